// Figures and prose as the lab prints them: thousands separators, sizes in B/KiB/MiB/GiB,
// printf-style formatting into a std::string, and text wrapped to a width.
//
//   lab::with_commas(1234567)     // "1,234,567"
//   lab::human_bytes(8388608)     // "8.0 MiB"
//   lab::printf_string("%.1f us", 2.25)
//   lab::wrap(long_sentence, 78, 2)  // lines of at most 78 columns, indented by 2
//
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace gearbox::lab {

// 1234567 -> "1,234,567"; -1234 -> "-1,234".
std::string with_commas(long long value);

// A byte count in the largest unit that keeps it >= 1: "312 B", "12.5 KiB", "8.0 MiB".
std::string human_bytes(double bytes);

// `text` in lines of at most `width` columns, each indented by `indent` spaces and
// ending in '\n'. Breaks only at spaces; a word longer than a line gets a line of its own.
std::string wrap(const std::string& text, std::size_t width, std::size_t indent);

// snprintf into a std::string (up to 255 characters; longer output is cut).
template <class... Args>
std::string printf_string(const char* pattern, Args... args) {
  char text[256];
  std::snprintf(text, sizeof text, pattern, args...);
  return text;
}

}  // namespace gearbox::lab
