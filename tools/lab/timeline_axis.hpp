// Private to the timeline renderers (timeline_render.cpp, timeline_svg.cpp): the time
// axis both draw, times in words, and labels made safe to print.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gearbox::lab::detail {

struct AxisTick {
  double at_us = 0;
  std::string label;  // "1.5 ms"
};

// The axis of [begin_us, end_us]: its two ends, then one or two round ticks strictly
// inside, all labelled in the one unit (µs, ms or s) that suits the length.
struct Axis {
  AxisTick begin;
  AxisTick end;
  std::vector<AxisTick> ticks;
};
Axis make_axis(double begin_us, double end_us, bool unicode);

// A length of time with three significant digits in a fitting unit: "25 µs", "1.25 ms".
std::string format_duration(double us, bool unicode);

// `text` with control characters (C0, DEL, C1) replaced by '?', and in ASCII mode every
// other non-ASCII character too. The input is valid UTF-8 (the JSON parser checks).
std::string printable(std::string_view text, bool unicode);

std::size_t code_points(std::string_view text) noexcept;

// "… and 3 more rows" ("..." in ASCII mode), "… and 1 more row".
std::string more_rows(std::size_t count, bool unicode);

// At most `width` code points of `text`, cut with "…" (or "..." in ASCII mode).
std::string shorten(std::string_view text, std::size_t width, bool unicode);

}  // namespace gearbox::lab::detail
