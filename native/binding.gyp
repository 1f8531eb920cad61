{
  "targets": [
    {
      "target_name": "omni_torch",
      "sources": ["src/addon.cc", "src/store.cc", "src/convert.cc", "src/memory.cc", "src/autocast.cc", "src/distributed.cc", "src/grad_sync.cc", "src/packed_linear.cc"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node find-libtorch.cjs include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "_GLIBCXX_USE_CXX11_ABI=<!(node find-libtorch.cjs abi)",
        "<!@(node find-libtorch.cjs c10d-defines)",
        "<!@(node find-libtorch.cjs onednn-defines)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": [
        "-L<!(node find-libtorch.cjs lib)",
        "-Wl,--no-as-needed",
        "<!@(node find-libtorch.cjs libs)",
        "<!@(node find-libtorch.cjs c10d-libs)",
        "<!@(node find-libtorch.cjs onednn-libs)",
        "-Wl,--as-needed",
        "-Wl,-rpath,<!(node find-libtorch.cjs lib)"
      ]
    }
  ]
}
