// The translation unit that builds the test executables' precompiled header
// (gearbox_add_gtest in cmake/GearboxOptions.cmake): it compiles nothing of its own.
