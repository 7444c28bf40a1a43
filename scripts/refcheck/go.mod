module jvs.local/refcheck

go 1.22
