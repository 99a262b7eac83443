// The C++ layout probe of lite-env's emscripten toolchain (lite_env/channel/cxx_check.py).
// Built as a side module with the toolchain's em++ and loaded by the Pyodide runtime, it
// reports how the toolchain's libc++ headers lay out the standard types, then exercises
// libc++ code that lives in the runtime (iostreams, locale, std::to_string, exceptions)
// on objects this module allocated, with guard bytes behind each object: a runtime that
// writes past the end of an object the headers made too small leaves a trace there.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iomanip>
#include <ios>
#include <locale>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

template <class T>
std::string layout(const char* name) {
  return quoted(name) + ": [" + std::to_string(sizeof(T)) + ", " + std::to_string(alignof(T)) +
         "]";
}

// Constructs a T in a buffer of sizeof(T) + SLACK bytes filled with `pattern`, runs `use` on
// it and destroys it: returns how many bytes past sizeof(T) no longer hold the pattern.
constexpr std::size_t SLACK = 64;

template <class T, class Use>
std::size_t overrun(unsigned char pattern, Use use) {
  std::size_t size = sizeof(T) + SLACK;
  auto* raw = static_cast<unsigned char*>(std::aligned_alloc(16, (size + 15) / 16 * 16));
  std::memset(raw, pattern, size);
  T* object = new (raw) T();
  use(*object);
  object->~T();
  std::size_t changed = 0;
  for (std::size_t i = sizeof(T); i < size; ++i) changed += raw[i] != pattern;
  std::free(raw);
  return changed;
}

template <class T, class Use>
std::string guarded(const char* name, Use use) {
  // 0x00 reads as `false` and 0xa5 as `true` in a flag the runtime expects behind the object
  std::size_t changed = overrun<T>(0x00, use) + overrun<T>(0xa5, use);
  return quoted(name) + ": " + std::to_string(changed);
}

[[gnu::noinline]] void throw_here(int code) {
  throw std::runtime_error("thrown in the module " + std::to_string(code));
}

struct ModuleError : std::logic_error {
  using std::logic_error::logic_error;
};

std::string exceptions() {
  std::string seen;
  try {  // thrown by libc++ code in the runtime (std::stoi), caught here by type
    (void)std::stoi("not a number");
  } catch (const std::invalid_argument&) {
    seen += "invalid_argument;";
  }
  try {
    (void)std::string("abc").at(10);
  } catch (const std::out_of_range&) {
    seen += "out_of_range;";
  }
  try {  // thrown here, caught through its base class
    throw_here(7);
  } catch (const std::exception& error) {
    seen += std::string(error.what()) + ";";
  }
  std::exception_ptr stored;
  try {
    throw ModuleError("stored");
  } catch (...) {
    stored = std::current_exception();
  }
  try {
    std::rethrow_exception(stored);
  } catch (const std::logic_error& error) {
    seen += std::string("rethrown ") + error.what() + ";";
  }
  return seen;
}

std::string formatting() {
  std::ostringstream out;
  out << std::setw(6) << 42 << '|' << std::setfill('*') << std::setw(8) << std::fixed
      << std::setprecision(3) << 3.14159 << '|' << std::left << std::setw(5) << "ab" << '|'
      << std::hex << std::showbase << 255 << '|' << std::scientific << std::setprecision(2)
      << 12345.678;
  out.fill(' ');
  out << '|' << std::dec << std::right << std::setw(4) << 7;
  return out.str();
}

std::string parsing() {
  std::istringstream in("42 -3.25 word 1f");
  int number = 0;
  double real = 0;
  std::string word;
  unsigned hex = 0;
  in >> number >> real >> word >> std::hex >> hex;
  std::ostringstream out;
  out << number << ',' << real << ',' << word << ',' << hex << ',' << bool(in);
  return out.str();
}

std::string containers() {
  std::unordered_map<std::string, int> counts;
  for (int i = 0; i < 1000; ++i) counts[std::to_string(i % 97)] += i;
  auto shared = std::make_shared<std::vector<int>>(100, 3);
  std::weak_ptr<std::vector<int>> weak = shared;
  std::function<int(int)> add = [shared](int x) { return x + static_cast<int>(shared->size()); };
  std::ostringstream out;
  out << counts.size() << ',' << counts["5"] << ',' << add(1) << ',' << weak.use_count() << ','
      << std::use_facet<std::numpunct<char>>(std::locale::classic()).decimal_point();
  return out.str();
}

}  // namespace

extern "C" const char* lite_env_cxx_layout() {
  static std::string json;
  json = "{\"libcpp_version\": " + std::to_string(_LIBCPP_VERSION) +
         ", \"abi_version\": " + std::to_string(_LIBCPP_ABI_VERSION) + ", \"flags\": [";
  const char* flags[] = {
#ifdef _LIBCPP_ABI_IOS_ALLOW_ARBITRARY_FILL_VALUE
      "IOS_ALLOW_ARBITRARY_FILL_VALUE",
#endif
#ifdef _LIBCPP_ABI_NO_COMPRESSED_PAIR_PADDING
      "NO_COMPRESSED_PAIR_PADDING",
#endif
#ifdef _LIBCPP_ABI_ALTERNATE_STRING_LAYOUT
      "ALTERNATE_STRING_LAYOUT",
#endif
#ifdef _LIBCPP_ABI_FIX_UNORDERED_CONTAINER_SIZE_TYPE
      "FIX_UNORDERED_CONTAINER_SIZE_TYPE",
#endif
#ifdef _LIBCPP_ABI_OPTIMIZED_FUNCTION
      "OPTIMIZED_FUNCTION",
#endif
#ifdef _LIBCPP_ABI_OPTIMIZED_LOCALE_NUM_GET
      "OPTIMIZED_LOCALE_NUM_GET",
#endif
#ifdef _LIBCPP_ABI_ENABLE_SHARED_PTR_TRIVIAL_ABI
      "ENABLE_SHARED_PTR_TRIVIAL_ABI",
#endif
#ifdef _LIBCPP_ABI_VARIANT_INDEX_TYPE_OPTIMIZATION
      "VARIANT_INDEX_TYPE_OPTIMIZATION",
#endif
      nullptr};
  for (const char** flag = flags; *flag; ++flag)
    json += (flag == flags ? "" : ", ") + quoted(*flag);
  json += "], \"types\": {" + layout<std::string>("std::string") + ", " +
          layout<std::wstring>("std::wstring") + ", " +
          layout<std::ios_base>("std::ios_base") + ", " +
          layout<std::basic_ios<char>>("std::basic_ios<char>") + ", " +
          layout<std::streambuf>("std::streambuf") + ", " +
          layout<std::stringbuf>("std::stringbuf") + ", " +
          layout<std::ostream>("std::ostream") + ", " +
          layout<std::ostringstream>("std::ostringstream") + ", " +
          layout<std::istringstream>("std::istringstream") + ", " +
          layout<std::stringstream>("std::stringstream") + ", " +
          layout<std::vector<int>>("std::vector<int>") + ", " +
          layout<std::vector<bool>>("std::vector<bool>") + ", " +
          layout<std::shared_ptr<int>>("std::shared_ptr<int>") + ", " +
          layout<std::unique_ptr<int>>("std::unique_ptr<int>") + ", " +
          layout<std::function<int(int)>>("std::function<int(int)>") + ", " +
          layout<std::unordered_map<int, int>>("std::unordered_map<int,int>") + ", " +
          layout<std::locale>("std::locale") + ", " +
          layout<std::exception_ptr>("std::exception_ptr") + ", " +
          layout<std::runtime_error>("std::runtime_error") + ", " +
          layout<long double>("long double") + ", " + layout<std::max_align_t>("max_align_t") +
          "}}";
  return json.c_str();
}

// Each part of the round trip is its own function, run in this order: a part that corrupts
// memory may abort the runtime, and the parts before it have reported by then.
extern "C" const char* lite_env_cxx_overrun() {
  static std::string json;
  auto write = [](std::ostream& out) { out << std::setw(12) << 1234567 << std::setw(9) << 2.5; };
  json = "{" + guarded<std::ostringstream>("std::ostringstream", write);
  json += ", " + guarded<std::stringstream>("std::stringstream", [&](std::stringstream& s) {
    write(s);
    int n;
    s >> n;
  });
  json += ", " + guarded<std::istringstream>("std::istringstream", [](std::istringstream& s) {
    s.str("17 x");
    int n;
    s >> std::setw(3) >> n;
  });
  json += ", " + guarded<std::locale>("std::locale", [](std::locale& l) {
    l = std::locale(l, new std::numpunct<char>);
  });
  json += ", " + guarded<std::string>("std::string", [](std::string& s) {
    s.assign(100, 'x');
    s.append("tail");
  });
  json += "}";
  return json.c_str();
}

#define LITE_ENV_STRING_PART(name, value)  \
  extern "C" const char* lite_env_cxx_##name() { \
    static std::string json;                     \
    json = quoted(value);                        \
    return json.c_str();                         \
  }

LITE_ENV_STRING_PART(format, formatting())
LITE_ENV_STRING_PART(parse, parsing())
LITE_ENV_STRING_PART(to_string, std::to_string(-12345) + " " + std::to_string(2.5))
LITE_ENV_STRING_PART(containers, containers())
LITE_ENV_STRING_PART(exceptions, exceptions())
