{
  "targets": [
    {
      "target_name": "jvs_native",
      "sources": ["native/jvs_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
