// Drawing a Timeline (timeline.hpp): as text for a terminal, or as an SVG image for a
// README.
//
//   Timeline t = gearbox::lab::load_timeline("trace.json");
//   std::fputs(gearbox::lab::render_ascii(t, gearbox::lab::ascii_options_for_stdout()).c_str(), stdout);
//   std::ofstream("trace.svg") << gearbox::lab::render_svg(t, {.title = "echo server, 4 clients"});
//
// Text: a label column, then one character per cell of (end - begin) / cells of time:
// running for at least half the cell draws the run character ('█', or '#' in ASCII),
// any other running or waiting the wait character ('░' or '.'), nothing a space. Below
// the rows: a time axis with the start, the end and one or two ticks, a legend, and
// "… and N more rows" when rows were left out. No line is wider than `width` code points
// (colour escapes aside); labels are cleaned of control characters and cut with "…".
//
// Only the first max_rows rows are drawn, so a trace of a million tasks renders as fast
// as a small one. All functions are pure (ascii_options_for_stdout reads the environment)
// and safe to call from several threads at once.
#pragma once

#include <cstddef>
#include <string>

#include "timeline.hpp"

namespace gearbox::lab {

struct AsciiOptions {
  std::size_t width = 80;      // columns per line; below k_min_width it is taken as k_min_width
  std::size_t max_rows = 16;   // rows drawn; the rest are counted
  bool unicode = true;         // block characters, "…" and "µs"; else ASCII only
  bool color = false;          // ANSI colours for the bars and the legend

  static constexpr std::size_t k_min_width = 30;
};

std::string render_ascii(const Timeline& timeline, const AsciiOptions& options = {});

// Unicode when the locale is UTF-8 (the first set of LC_ALL, LC_CTYPE, LANG says "UTF-8"
// or "utf8"), colour when stdout is a terminal and NO_COLOR is unset or empty.
AsciiOptions ascii_options_for_stdout();
bool is_utf8_locale(const char* lc_all, const char* lc_ctype, const char* lang) noexcept;

struct SvgOptions {
  std::string title = "gearbox timeline";
  std::size_t max_rows = 16;
  double width_px = 900;  // fits a GitHub README; clamped to [400, 4000]
  // A <title> in each bar, which a browser shows on hover: the row, running or waiting,
  // its start and length, and the thread(s) that ran it ("task 3: running 250 ms from
  // 1.20 s, on thread 4242"). Off for README pictures (GitHub shows no titles).
  bool slice_titles = false;
};

// A self-contained SVG document: labels, a <rect> per interval (neighbours closer than
// half a pixel are drawn as one, and titled as one), a time axis, a legend and the title.
std::string render_svg(const Timeline& timeline, const SvgOptions& options = {});

}  // namespace gearbox::lab
