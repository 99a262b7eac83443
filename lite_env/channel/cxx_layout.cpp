// lite-env's C++ layout check: built as a side module with the toolchain's libc++ headers and
// loaded in the Pyodide runtime, whose libc++ (exported by the main module) runs the
// out-of-line parts of the standard library. When the headers lay a type out smaller than the
// runtime's libc++ does, the runtime's code writes past the object: the guard bytes after an
// ostringstream built in place show it, before anything else is corrupted. (Part of lite-env:
// lite_env/channel/cxxcheck.py compiles it and reads the results through ctypes.)
#include <cstdio>
#include <cstring>
#include <functional>
#include <iomanip>
#include <ios>
#include <locale>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr unsigned char GUARD = 0xA5;
constexpr std::size_t GUARD_BYTES = 64;

template <typename T>
int guarded_bytes_changed(char *out, int size) {
  alignas(std::max_align_t) unsigned char buffer[sizeof(T) + GUARD_BYTES];
  std::memset(buffer, GUARD, sizeof buffer);
  T *stream = new (buffer) T();
  *stream << std::setfill('*') << std::setw(8) << 42 << ' ' << 2.5;
  std::snprintf(out, size, "%s", stream->str().c_str());
  stream->~T();
  int changed = 0;
  for (std::size_t i = sizeof(T); i < sizeof buffer; ++i) {
    changed += buffer[i] != GUARD;
  }
  return changed;
}

}  // namespace

extern "C" {

// "name=size;..." of the standard types whose layout the headers decide.
int lite_env_cxx_sizes(char *out, int size) {
  return std::snprintf(
      out, size,
      "string=%zu;vector=%zu;ios_base=%zu;basic_ios=%zu;streambuf=%zu;stringbuf=%zu;"
      "ostringstream=%zu;istringstream=%zu;stringstream=%zu;locale=%zu;shared_ptr=%zu;"
      "function=%zu;unordered_map=%zu",
      sizeof(std::string), sizeof(std::vector<int>), sizeof(std::ios_base),
      sizeof(std::basic_ios<char>), sizeof(std::streambuf), sizeof(std::stringbuf),
      sizeof(std::ostringstream), sizeof(std::istringstream), sizeof(std::stringstream),
      sizeof(std::locale), sizeof(std::shared_ptr<int>), sizeof(std::function<void()>),
      sizeof(std::unordered_map<int, int>));
}

// Guard bytes an ostringstream (a stringstream) built in place changed past its end: 0 when the
// layouts match. Writes the text it formatted with setfill('*') and setw(8): "******42 2.5".
int lite_env_cxx_guard_ostringstream(char *out, int size) {
  return guarded_bytes_changed<std::ostringstream>(out, size);
}
int lite_env_cxx_guard_stringstream(char *out, int size) {
  return guarded_bytes_changed<std::stringstream>(out, size);
}

// An iostream round trip: format numbers, parse them back; writes the text, returns 1 when the
// parsed values are the ones written.
int lite_env_cxx_round_trip(char *out, int size) {
  std::ostringstream written;
  written << 12345 << ' ' << 0.125 << ' ' << std::hex << 255 << ' ' << std::string("word");
  std::string text = written.str();
  std::istringstream read(text);
  int number = 0, hex = 0;
  double fraction = 0;
  std::string word;
  read >> std::dec >> number >> fraction >> std::hex >> hex >> word;
  std::snprintf(out, size, "%s", text.c_str());
  return number == 12345 && fraction == 0.125 && hex == 255 && word == "word";
}
}
