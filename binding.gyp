{
  "targets": [
    {
      "target_name": "jvs_native",
      "sources": ["native/jvs_native.c", "native/jvs_tree.c", "native/jvs_hash.c", "native/jvs_roothash.c", "native/jvs_names.c", "native/jvs_beneath.c", "native/jvs_procfd.c", "native/jvs_xattr.c", "native/jvs_chunks.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
