# Install rules and the exported CMake package for chainrule.
#
# `cmake --install build --prefix <prefix>` lays out:
#   <prefix>/lib/libchainrule.a                        (libchainrule.so with -DBUILD_SHARED_LIBS=ON)
#   <prefix>/include/chainrule/{autograd,nn,optim}/...  every *.h, subfolders kept
#   <prefix>/lib/cmake/chainrule/chainruleConfig.cmake (+ ConfigVersion, Targets)
# after which a consumer writes `find_package(chainrule REQUIRED)` and links `chainrule::chainrule`.
#
# On by default only when chainrule is the top-level project: a parent that pulls chainrule in with
# add_subdirectory() gets no chainrule install rules unless it turns CHAINRULE_INSTALL on.
option(CHAINRULE_INSTALL "Generate chainrule's install rules and CMake package" ${PROJECT_IS_TOP_LEVEL})
if(NOT CHAINRULE_INSTALL)
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CHAINRULE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/chainrule"
  CACHE STRING "Where chainruleConfig.cmake is installed, relative to the prefix")

install(TARGETS chainrule
  EXPORT chainruleTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The destination must match the $<INSTALL_INTERFACE:include/chainrule> of the target (top-level
# CMakeLists.txt), so it is spelled the same way rather than through CMAKE_INSTALL_INCLUDEDIR.
foreach(folder autograd nn optim)
  if(IS_DIRECTORY "${PROJECT_SOURCE_DIR}/${folder}")
    install(DIRECTORY "${PROJECT_SOURCE_DIR}/${folder}"
      DESTINATION include/chainrule
      FILES_MATCHING PATTERN "*.h")
  endif()
endforeach()

install(EXPORT chainruleTargets
  NAMESPACE chainrule::
  DESTINATION ${CHAINRULE_INSTALL_CMAKEDIR})

# The config file needs to know whether the installed library is static: only then do consumers
# link OpenBLAS themselves (the library links it PRIVATE, which a static archive cannot hide).
get_target_property(CHAINRULE_LIBRARY_TYPE chainrule TYPE)
configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/chainruleConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/chainruleConfig.cmake"
  INSTALL_DESTINATION ${CHAINRULE_INSTALL_CMAKEDIR})
# 0.x: minor versions may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/chainruleConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/chainruleConfig.cmake"
  "${PROJECT_BINARY_DIR}/chainruleConfigVersion.cmake"
  DESTINATION ${CHAINRULE_INSTALL_CMAKEDIR})
