# Builds and runs the consumer project next to this file against chainrule; driven by ctest
# (see tests/CMakeLists.txt), run as `cmake -D... -P consume.cmake`.
#
#   MODE             find_package: install CHAINRULE_BUILD into WORK_DIR/prefix and find it there
#                    add_subdirectory: add_subdirectory(CHAINRULE_SOURCE) from the consumer
#   CHAINRULE_SOURCE chainrule's source tree
#   CHAINRULE_BUILD  chainrule's build tree (already built; find_package mode installs from it)
#   WORK_DIR         scratch directory for the prefix and the consumer's build
#   CONFIG           build type of CHAINRULE_BUILD (the find_package consumer uses the same)
#   GENERATOR, CXX_COMPILER              forwarded to the consumer
#   CXX_FLAGS        the sanitizer flags of CHAINRULE_BUILD, for the find_package consumer
foreach(var MODE CHAINRULE_SOURCE CHAINRULE_BUILD WORK_DIR CONFIG GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "consume.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "consume.cmake: ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consume.cmake (${MODE}): command failed (${rc}): ${shown}")
  endif()
endfunction()

# find_package links the installed library, so the consumer uses the same build type and flags
# (an instrumented libchainrule.a needs the sanitizer runtime at link). With add_subdirectory the
# consumer compiles chainrule itself; no build type (no optimization) and no instrumentation make
# that the quickest it can be, and the wiring under test does not depend on either. The library
# itself runs under the sanitizers in the unit tests.
if(MODE STREQUAL "add_subdirectory")
  set(build_type "")
  set(config Debug)  # only used by multi-config generators
  set(CXX_FLAGS "")
else()
  set(build_type "${CONFIG}")
  set(config "${CONFIG}")
endif()

set(consumer_build "${WORK_DIR}/build")
set(configure_args
  -S "${CMAKE_CURRENT_LIST_DIR}" -B "${consumer_build}"
  -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_BUILD_TYPE=${build_type}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}"
  "-DCHAINRULE_CONSUME=${MODE}")

if(MODE STREQUAL "find_package")
  # A fresh prefix and a fresh consumer each time, so nothing stale can make it pass. Only the
  # given prefix is searched for chainrule; the check after configuring proves it was used.
  set(prefix "${WORK_DIR}/prefix")
  file(REMOVE_RECURSE "${WORK_DIR}")
  run(${CMAKE_COMMAND} --install "${CHAINRULE_BUILD}" --prefix "${prefix}" --config "${CONFIG}")
  file(GLOB_RECURSE config_files "${prefix}/*/chainruleConfig.cmake")
  if(NOT config_files)
    message(FATAL_ERROR "consume.cmake: `cmake --install` put no chainruleConfig.cmake under ${prefix} "
      "(is CHAINRULE_INSTALL off in ${CHAINRULE_BUILD}?)")
  endif()
  run(${CMAKE_COMMAND} ${configure_args} "-DCMAKE_PREFIX_PATH=${prefix}")
  file(STRINGS "${consumer_build}/CMakeCache.txt" found_dir REGEX "^chainrule_DIR:")
  string(FIND "${found_dir}" "=${prefix}/" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "consume.cmake: chainrule was found outside ${prefix}: ${found_dir}")
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  # The consumer's build is kept between runs: it compiles chainrule's library, so reuse it.
  run(${CMAKE_COMMAND} ${configure_args} "-DCHAINRULE_ROOT=${CHAINRULE_SOURCE}")
else()
  message(FATAL_ERROR "consume.cmake: MODE must be find_package or add_subdirectory, not '${MODE}'")
endif()

cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
run(${CMAKE_COMMAND} --build "${consumer_build}" --config "${config}" --parallel ${jobs})
if(EXISTS "${consumer_build}/${config}/consumer")   # multi-config generators
  run("${consumer_build}/${config}/consumer")
else()
  run("${consumer_build}/consumer")
endif()
