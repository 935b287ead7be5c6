{
  "targets": [
    {
      "target_name": "md5x",
      "sources": ["md5x.c"],
      "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wextra"],
      "cflags!": ["-O2"]
    }
  ]
}
