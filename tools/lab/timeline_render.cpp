// The text timeline; the SVG one is in timeline_svg.cpp, what they share in timeline_axis.cpp.
#include "timeline_render.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>

#include "timeline_axis.hpp"

namespace gearbox::lab {
namespace {

using detail::code_points;

enum class Cell : std::uint8_t { empty, waiting, running };

struct Glyphs {
  std::string_view running, waiting, rule, tick, first, last;
};
constexpr Glyphs k_unicode{"█", "░", "─", "┬", "├", "┤"};
constexpr Glyphs k_ascii{"#", ".", "-", "+", "+", "+"};

constexpr std::string_view k_running_colour = "\x1b[32m";
constexpr std::string_view k_waiting_colour = "\x1b[33m";
constexpr std::string_view k_no_colour = "\x1b[0m";

// Where a time falls among `n` cells.
std::size_t column_of(double us, double begin, double end, std::size_t n) {
  const double at = (us - begin) * static_cast<double>(n) / (end - begin);
  return at > 0 ? std::min(n - 1, static_cast<std::size_t>(at)) : 0;
}

// What covers each of `n` equal cells of [begin, end] in `row`.
std::vector<Cell> cells_of(const TimelineRow& row, double begin, double end, std::size_t n) {
  std::vector<Cell> cells(n, Cell::empty);
  const double length = end - begin;
  if (!(length > 0)) return cells;
  std::vector<double> running(n), any(n);
  for (const Interval& interval : row.intervals) {
    const double b = std::max(interval.begin_us, begin);
    const double e = std::min(interval.end_us, end);
    if (!(e > b)) continue;
    for (std::size_t i = column_of(b, begin, end, n); i < n; ++i) {
      const double cell_begin = begin + length * static_cast<double>(i) / static_cast<double>(n);
      const double cell_end = i + 1 == n ? end : begin + length * static_cast<double>(i + 1) / static_cast<double>(n);
      if (cell_begin >= e) break;
      const double overlap = std::min(e, cell_end) - std::max(b, cell_begin);
      if (overlap <= 0) continue;
      any[i] += overlap;
      if (interval.state == SliceState::running) running[i] += overlap;
    }
  }
  const double half_cell = length / static_cast<double>(n) / 2 * (1 - 1e-9);  // forgive rounding
  for (std::size_t i = 0; i < n; ++i)
    cells[i] = running[i] >= half_cell ? Cell::running : any[i] > 0 ? Cell::waiting : Cell::empty;
  return cells;
}

std::string paint(std::string_view text, std::string_view colour, bool color) {
  return color ? std::string(colour) + std::string(text) + std::string(k_no_colour) : std::string(text);
}

std::string bar(const std::vector<Cell>& cells, const Glyphs& glyphs, bool color) {
  std::string out;
  for (std::size_t i = 0, end = i; i < cells.size(); i = end) {
    std::string run;
    for (end = i; end < cells.size() && cells[end] == cells[i]; ++end)
      run += cells[i] == Cell::running ? glyphs.running : cells[i] == Cell::waiting ? glyphs.waiting : " ";
    if (cells[i] == Cell::empty) out += run;
    else out += paint(run, cells[i] == Cell::running ? k_running_colour : k_waiting_colour, color);
  }
  return out;
}

// The axis under the bars, as a rule with marks and a line of labels, `n` columns each.
// The ends are labelled first; a tick whose label would touch another is left out.
std::pair<std::string, std::string> axis_lines(double begin, double end, std::size_t n, const Glyphs& glyphs,
                                               bool unicode) {
  const detail::Axis axis = detail::make_axis(begin, end, unicode);
  std::vector<std::pair<std::size_t, std::string_view>> placed;  // column, label
  std::vector<bool> marked(n);
  std::size_t free_from = 0;  // the first column a further label may use
  if (const std::size_t w = code_points(axis.begin.label); w <= n) {
    placed.emplace_back(0, axis.begin.label);
    free_from = w + 1;
  }
  std::size_t free_to = n;  // one past the last column a tick label may use
  if (const std::size_t w = code_points(axis.end.label); end > begin && w < n && n - w >= free_from) {
    placed.emplace_back(n - w, axis.end.label);
    free_to = n - w - 1;
  }
  for (const detail::AxisTick& tick : axis.ticks) {
    const std::size_t column = column_of(tick.at_us, begin, end, n);
    const std::size_t w = code_points(tick.label);
    if (column < free_from || column + w > free_to) continue;
    placed.emplace_back(column, tick.label);
    marked[column] = true;
    free_from = column + w + 1;
  }
  std::sort(placed.begin(), placed.end());
  std::string labels;
  for (const auto& [column, label] : placed) {
    labels.append(column - code_points(labels), ' ');
    labels += label;
  }
  std::string rule;
  for (std::size_t i = 0; i < n; ++i)
    rule += i == 0 ? glyphs.first : i + 1 == n ? glyphs.last : marked[i] ? glyphs.tick : glyphs.rule;
  return {rule, labels};
}

bool contains_ignoring_case(std::string_view text, std::string_view lower_case_word) noexcept {
  return std::search(text.begin(), text.end(), lower_case_word.begin(), lower_case_word.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         }) != text.end();
}

void add_line(std::string& out, std::string line) {
  line.erase(line.find_last_not_of(' ') + 1);
  out += line;
  out += '\n';
}

}  // namespace

std::string render_ascii(const Timeline& timeline, const AsciiOptions& options) {
  const Glyphs& glyphs = options.unicode ? k_unicode : k_ascii;
  const std::size_t width = std::max(options.width, AsciiOptions::k_min_width);
  if (timeline.rows.empty()) return "(no activity in the trace)\n";
  const std::size_t shown = std::min(timeline.rows.size(), options.max_rows);
  std::vector<std::string> labels;
  std::size_t label_width = 1;
  for (std::size_t i = 0; i < shown; ++i) {
    labels.push_back(detail::printable(timeline.rows[i].label, options.unicode));
    label_width = std::max(label_width, code_points(labels.back()));
  }
  label_width = std::min(label_width, std::max<std::size_t>(4, width / 4));
  const std::size_t cells = width - label_width - 1;
  const std::string indent(label_width + 1, ' ');

  std::string out;
  for (std::size_t i = 0; i < shown; ++i) {
    std::string label = detail::shorten(labels[i], label_width, options.unicode);
    label.append(label_width - code_points(label), ' ');
    add_line(out, label + " " + bar(cells_of(timeline.rows[i], timeline.begin_us, timeline.end_us, cells), glyphs,
                                    options.color));
  }
  const auto [rule, axis_labels] = axis_lines(timeline.begin_us, timeline.end_us, cells, glyphs, options.unicode);
  add_line(out, indent + rule);
  add_line(out, indent + axis_labels);

  const std::pair<std::string_view, std::string> pieces[] = {
      {k_running_colour, std::string(glyphs.running) + " running"},
      {k_waiting_colour, std::string(glyphs.waiting) + " waiting"},
      {{}, "one column = " + detail::format_duration(timeline.duration_us() / static_cast<double>(cells),
                                                     options.unicode)},
  };
  std::string legend = indent;
  std::size_t legend_width = indent.size();
  for (const auto& [colour, piece] : pieces) {
    const std::string_view gap = legend_width == indent.size() ? "" : "  ";
    if (legend_width + gap.size() + code_points(piece) > width) break;
    legend += std::string(gap) + (colour.empty() ? piece : paint(piece, colour, options.color));
    legend_width += gap.size() + code_points(piece);
  }
  add_line(out, legend);
  if (shown < timeline.rows.size()) {
    add_line(out, detail::shorten(detail::more_rows(timeline.rows.size() - shown, options.unicode), width,
                                  options.unicode));
  }
  return out;
}

bool is_utf8_locale(const char* lc_all, const char* lc_ctype, const char* lang) noexcept {
  for (const char* value : {lc_all, lc_ctype, lang}) {
    if (value == nullptr || *value == '\0') continue;
    for (const std::string_view name : {"utf-8", "utf8"})
      if (contains_ignoring_case(value, name)) return true;
    return false;
  }
  return false;
}

AsciiOptions ascii_options_for_stdout() {
  AsciiOptions options;
  options.unicode = is_utf8_locale(std::getenv("LC_ALL"), std::getenv("LC_CTYPE"), std::getenv("LANG"));
  const char* no_colour = std::getenv("NO_COLOR");
  options.color = ::isatty(STDOUT_FILENO) == 1 && (no_colour == nullptr || *no_colour == '\0');
  return options;
}

}  // namespace gearbox::lab
