#pragma once
// The examples' command lines: `--help` (or -h) prints what the program does and exits 0; an
// argument the program does not know exits 2 with a message and the usage.
#include <iostream>
#include <string>

namespace chainrule::examples {

inline bool is_help(const std::string& arg) { return arg == "--help" || arg == "-h"; }

// For a program that takes no arguments: returns the exit code when main should stop now (0 after
// --help, 2 for anything else), -1 to run.
inline int no_arguments(int argc, char** argv, const char* name, const char* about) {
  if (argc < 2) return -1;
  const std::string arg = argv[1];
  if (is_help(arg)) {
    std::cout << "usage: " << name << "\n" << about << "\n";
    return 0;
  }
  std::cerr << name << ": unknown argument '" << arg << "' (it takes none)\nusage: " << name << "\n";
  return 2;
}

}  // namespace chainrule::examples
