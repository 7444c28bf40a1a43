module jvs.local/golden

go 1.22
