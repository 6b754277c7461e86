# FindMPFR — MPFR and the GMP it is built on, for gpukit's deep-zoom headers.
#
# Defines MPFR_FOUND, MPFR_VERSION and the imported target MPFR::MPFR (include directories
# of mpfr.h and gmp.h, the two libraries). Hints: MPFR_INCLUDE_DIR, GMP_INCLUDE_DIR,
# MPFR_LIBRARY, GMP_LIBRARY. Besides the development files' libmpfr.so/libgmp.so the
# runtime libraries' sonames are accepted, so a machine with only the runtime packages
# (which GCC itself depends on) and copies of mpfr.h and gmp.h can build too.
find_path(MPFR_INCLUDE_DIR mpfr.h)
find_path(GMP_INCLUDE_DIR gmp.h)
find_library(MPFR_LIBRARY NAMES mpfr libmpfr.so.6)
find_library(GMP_LIBRARY NAMES gmp libgmp.so.10)

if(MPFR_INCLUDE_DIR AND EXISTS "${MPFR_INCLUDE_DIR}/mpfr.h")
  file(STRINGS "${MPFR_INCLUDE_DIR}/mpfr.h" _mpfr_version_line REGEX "^#define MPFR_VERSION_STRING ")
  string(REGEX REPLACE "^#define MPFR_VERSION_STRING \"([^\"]*)\".*" "\\1" MPFR_VERSION "${_mpfr_version_line}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(MPFR
  REQUIRED_VARS MPFR_LIBRARY MPFR_INCLUDE_DIR GMP_LIBRARY GMP_INCLUDE_DIR
  VERSION_VAR MPFR_VERSION)

if(MPFR_FOUND AND NOT TARGET MPFR::MPFR)
  add_library(MPFR::GMP UNKNOWN IMPORTED)
  set_target_properties(MPFR::GMP PROPERTIES
    IMPORTED_LOCATION "${GMP_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${GMP_INCLUDE_DIR}")
  add_library(MPFR::MPFR UNKNOWN IMPORTED)
  set_target_properties(MPFR::MPFR PROPERTIES
    IMPORTED_LOCATION "${MPFR_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${MPFR_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES MPFR::GMP)
endif()
mark_as_advanced(MPFR_INCLUDE_DIR GMP_INCLUDE_DIR MPFR_LIBRARY GMP_LIBRARY)
