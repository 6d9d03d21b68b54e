# Finds Node.js's http-parser (Debian: libhttp-parser-dev), which ships no CMake package
# and no pkg-config file, and defines the imported target http_parser::http_parser.
# Installed with gearbox's package, so that gearbox::http names its dependency by target
# instead of by an absolute path (the installed package stays relocatable).
#
# Result variables: http_parser_FOUND, http_parser_INCLUDE_DIR, http_parser_LIBRARY.
include_guard(GLOBAL)
find_path(http_parser_INCLUDE_DIR http_parser.h)
find_library(http_parser_LIBRARY http_parser)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(http_parser REQUIRED_VARS http_parser_LIBRARY http_parser_INCLUDE_DIR)
mark_as_advanced(http_parser_INCLUDE_DIR http_parser_LIBRARY)
if(http_parser_FOUND AND NOT TARGET http_parser::http_parser)
  add_library(http_parser::http_parser UNKNOWN IMPORTED)
  set_target_properties(http_parser::http_parser PROPERTIES
    IMPORTED_LOCATION "${http_parser_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${http_parser_INCLUDE_DIR}")
endif()
