# tools/mingw-compat/ggml-lib-prefix.cmake: ggml drops the `lib` prefix of its static libraries on
# Windows (ggml.a, ggml-base.a, ggml-cpu.a), and rustc looks for `libggml.a` on x86_64-pc-windows-gnu,
# so whisper-rs-sys cannot link them when the node is cross-built with MinGW. tools/windows-check.sh
# has whisper-rs-sys pass this file to CMake as CMAKE_PROJECT_ggml_INCLUDE (it forwards every
# CMAKE_* variable): included when ggml's project() starts, it puts the prefix back once ggml's
# directory, targets included, has been read.
cmake_language(DEFER DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" CALL
  set_target_properties ggml ggml-base ggml-cpu PROPERTIES PREFIX "lib")
