#include "timeline_axis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gearbox::lab::detail {
namespace {

struct TimeUnit {
  double us;
  const char* unicode_name;
  const char* ascii_name;
};
constexpr TimeUnit k_microseconds{1, "µs", "us"};
constexpr TimeUnit k_milliseconds{1e3, "ms", "ms"};
constexpr TimeUnit k_seconds{1e6, "s", "s"};

const TimeUnit& unit_for(double length_us) {
  if (length_us < 1e3) return k_microseconds;
  return length_us < 1e6 ? k_milliseconds : k_seconds;
}

// `value` with at most `decimals` decimals, without trailing zeros: 2.50 -> "2.5".
std::string format_number(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  std::string out = text;
  if (out.find('.') != std::string::npos) {
    out.erase(out.find_last_not_of('0') + 1);
    if (out.back() == '.') out.pop_back();
  }
  return out == "-0" ? "0" : out;
}

std::string format_time(double us, const TimeUnit& unit, int decimals, bool unicode) {
  return format_number(us / unit.us, decimals) + " " + (unicode ? unit.unicode_name : unit.ascii_name);
}

// The smallest of 1, 2 and 5 times a power of ten that is at least `x` (> 0).
double round_step(double x) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= x * (1 - 1e-12)) return m * power;
  return 10 * power;
}

// Decimals that show a step of `step` units: 1 -> 0, 0.5 -> 1, 0.05 -> 2.
int decimals_for(double step) {
  return step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
}

// The length in bytes of the UTF-8 sequence that starts with `lead`, or 0 if it cannot start one.
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC0 && lead < 0xE0) return 2;
  if (lead >= 0xE0 && lead < 0xF0) return 3;
  if (lead >= 0xF0 && lead < 0xF8) return 4;
  return 0;
}

// The byte offset of the first `n` code points of `text`.
std::size_t prefix_bytes(std::string_view text, std::size_t n) {
  std::size_t i = 0;
  for (; i < text.size(); ++i) {
    const bool starts_code_point = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (starts_code_point && n-- == 0) break;
  }
  return i;
}

}  // namespace

Axis make_axis(double begin_us, double end_us, bool unicode) {
  const double length = end_us - begin_us;
  const TimeUnit& unit = unit_for(length);
  Axis axis;
  if (!(length > 0)) {
    axis.begin = axis.end = {begin_us, format_time(begin_us, unit, 3, unicode)};
    return axis;
  }
  const double step = round_step(length / 3);
  const int tick_decimals = decimals_for(step / unit.us);
  // The ends are not round: show the length with three significant digits (3.03 s, 151 ms).
  const int end_decimals = std::clamp(2 - static_cast<int>(std::floor(std::log10(length / unit.us))), 0, 3);
  axis.begin = {begin_us, format_time(begin_us, unit, end_decimals, unicode)};
  axis.end = {end_us, format_time(end_us, unit, end_decimals, unicode)};
  // step >= length / 3, so at most three multiples of it lie strictly inside.
  for (double k = std::floor(begin_us / step) + 1; k * step < end_us && axis.ticks.size() < 3; ++k)
    if (k * step > begin_us) axis.ticks.push_back({k * step, format_time(k * step, unit, tick_decimals, unicode)});
  if (axis.ticks.size() == 3) axis.ticks.erase(axis.ticks.begin() + 1);  // keep them evenly spaced
  return axis;
}

std::string format_duration(double us, bool unicode) {
  const TimeUnit& unit = unit_for(us);
  const double value = us / unit.us;
  const int decimals = value >= 100 ? 0 : value >= 10 ? 1 : value >= 1 ? 2 : 3;
  return format_time(us, unit, decimals, unicode);
}

std::string printable(std::string_view text, bool unicode) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = sequence_length(lead);
    if (length == 0 || i + length > text.size()) {
      out += '?';
      ++i;
      continue;
    }
    const bool c0_or_delete = lead < 0x20 || lead == 0x7F;
    const bool c1 = lead == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;  // U+0080..U+009F
    if (c0_or_delete || c1 || (length > 1 && !unicode)) out += '?';
    else out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

std::size_t code_points(std::string_view text) noexcept {
  std::size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string more_rows(std::size_t count, bool unicode) {
  return std::string(unicode ? "…" : "...") + " and " + std::to_string(count) + " more row" + (count == 1 ? "" : "s");
}

std::string shorten(std::string_view text, std::size_t width, bool unicode) {
  if (code_points(text) <= width) return std::string(text);
  const std::string_view ellipsis = unicode ? "…" : "...";
  const std::size_t ellipsis_width = unicode ? 1 : 3;
  if (width <= ellipsis_width) return std::string(text.substr(0, prefix_bytes(text, width)));
  return std::string(text.substr(0, prefix_bytes(text, width - ellipsis_width))) + std::string(ellipsis);
}

}  // namespace gearbox::lab::detail
