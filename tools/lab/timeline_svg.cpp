// The SVG timeline (declared in timeline_render.hpp). Plain SVG 1.1 with no script, no
// external fonts and no CSS, so that GitHub shows it in a README as it is.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <vector>

#include "timeline_axis.hpp"
#include "timeline_render.hpp"

namespace gearbox::lab {
namespace {

constexpr double k_margin = 12;
constexpr double k_top = 34;        // below the title
constexpr double k_row_height = 20;
constexpr double k_bar_height = 14;
constexpr double k_char_width = 7.2;  // of the 12 px monospace labels
constexpr std::size_t k_label_chars = 28;
constexpr const char* k_running_fill = "#2f6fb3";
constexpr const char* k_waiting_fill = "#b9d3ef";
constexpr const char* k_text_fill = "#24292f";
constexpr const char* k_grid_stroke = "#d8dee4";
constexpr const char* k_font = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

std::string px(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

// Text for XML content and attribute values, without control characters (not allowed in XML).
std::string xml_text(std::string_view raw) {
  std::string out;
  for (char c : detail::printable(raw, true)) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&apos;"; break;
    default: out += c;
    }
  }
  return out;
}

std::string text_element(double x, double y, std::string_view anchor, std::string_view content,
                         std::string_view extra = "") {
  return "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" text-anchor=\"" + std::string(anchor) + "\"" +
         std::string(extra) + ">" + xml_text(content) + "</text>\n";
}

std::string rect(std::string_view css_class, double x, double y, double width, double height, const char* fill,
                 std::string_view title = {}) {
  std::string out = "<rect class=\"" + std::string(css_class) + "\" x=\"" + px(x) + "\" y=\"" + px(y) +
                    "\" width=\"" + px(width) + "\" height=\"" + px(height) + "\" fill=\"" + fill + "\"";
  if (title.empty()) return out + "/>\n";
  return out + "><title>" + xml_text(title) + "</title></rect>\n";
}

// What a bar's hover says: "task 3: running 250 ms from 1.20 s, on thread 4242".
std::string slice_title(const std::string& label, bool running, double begin_us, double end_us, double origin_us,
                        const std::vector<std::int64_t>& tids) {
  std::string out = label + (running ? ": running " : ": waiting ") + detail::format_duration(end_us - begin_us, true) +
                    " from " + detail::format_duration(begin_us - origin_us, true);
  if (tids.empty()) return out;
  out += tids.size() == 1 ? ", on thread " : ", on threads ";
  for (std::size_t i = 0; i < tids.size() && i < 3; ++i) out += (i ? ", " : "") + std::to_string(tids[i]);
  return out + (tids.size() > 3 ? ", …" : "");
}

struct RowDrawing {
  const TimelineRow& row;
  const std::string& label;
  double origin_us;
  bool titles;
};

// One <rect> per interval of `state` in `row`; neighbours less than half a pixel apart
// are one rect, so that a row of a million slices stays a few hundred rects.
void add_rects(std::string& out, const RowDrawing& drawing, SliceState state, const std::function<double(double)>& x_of,
               double y) {
  const bool running = state == SliceState::running;
  double open_begin = 0, open_end = 0, open_begin_us = 0, open_end_us = 0;
  std::vector<std::int64_t> tids;
  bool open = false;
  const auto flush = [&] {
    if (!open) return;
    const std::string title = drawing.titles ? slice_title(drawing.label, running, open_begin_us, open_end_us,
                                                           drawing.origin_us, tids)
                                             : std::string();
    out += rect(running ? "run" : "wait", open_begin, y, std::max(0.5, open_end - open_begin), k_bar_height,
                running ? k_running_fill : k_waiting_fill, title);
  };
  for (const Interval& interval : drawing.row.intervals) {
    if (interval.state != state) continue;
    const double begin = x_of(interval.begin_us), end = x_of(interval.end_us);
    if (!(open && begin - open_end < 0.5)) {
      flush();
      open_begin = begin;
      open_begin_us = interval.begin_us;
      open_end = end;
      open_end_us = interval.end_us;
      tids.clear();
      open = true;
    }
    open_end = std::max(open_end, end);
    open_end_us = std::max(open_end_us, interval.end_us);
    if (interval.tid != 0 && std::find(tids.begin(), tids.end(), interval.tid) == tids.end()) tids.push_back(interval.tid);
  }
  flush();
}

}  // namespace

std::string render_svg(const Timeline& timeline, const SvgOptions& options) {
  const double width = std::clamp(options.width_px, 400.0, 4000.0);
  const std::size_t shown = std::min(timeline.rows.size(), options.max_rows);
  std::vector<std::string> labels;
  std::size_t label_chars = 4;
  for (std::size_t i = 0; i < shown; ++i) {
    labels.push_back(detail::shorten(detail::printable(timeline.rows[i].label, true), k_label_chars, true));
    label_chars = std::max(label_chars, detail::code_points(labels.back()));
  }
  const double x0 = k_margin + static_cast<double>(label_chars) * k_char_width + 10;
  const double x1 = width - k_margin;
  const double length = timeline.duration_us();
  const auto x_of = [&](double us) {
    const double at = length > 0 ? (us - timeline.begin_us) / length : 0;
    return x0 + std::clamp(at, 0.0, 1.0) * (x1 - x0);
  };
  const double axis_y = k_top + static_cast<double>(shown) * k_row_height + 6;
  const double legend_y = axis_y + 38;
  const bool more = shown < timeline.rows.size();
  const double height = legend_y + (more ? 30 : 12);

  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + px(width) + "\" height=\"" + px(height) +
                    "\" viewBox=\"0 0 " + px(width) + " " + px(height) + "\" font-family=\"" + k_font +
                    "\" font-size=\"12\" fill=\"" + k_text_fill + "\">\n";
  out += "<title>" + xml_text(options.title) + "</title>\n";
  out += rect("background", 0, 0, width, height, "#ffffff");
  out += text_element(k_margin, 20, "start", options.title, " font-size=\"14\" font-weight=\"bold\"");
  const detail::Axis axis = detail::make_axis(timeline.begin_us, timeline.end_us, true);
  // A tick label is centred on its tick; it must not run into the labels of the ends.
  const auto label_width = [](const detail::AxisTick& t) { return static_cast<double>(t.label.size()) * 6.6; };
  std::vector<detail::AxisTick> ticks;
  for (const detail::AxisTick& t : axis.ticks)
    if (x_of(t.at_us) - label_width(t) / 2 > x0 + label_width(axis.begin) + 8 &&
        x_of(t.at_us) + label_width(t) / 2 < x1 - label_width(axis.end) - 8)
      ticks.push_back(t);
  for (const detail::AxisTick& t : ticks)  // grid lines, under the bars
    out += "<path d=\"M" + px(x_of(t.at_us)) + " " + px(k_top) + "V" + px(axis_y) + "\" stroke=\"" + k_grid_stroke +
           "\"/>\n";
  for (std::size_t i = 0; i < shown; ++i) {
    const double y = k_top + static_cast<double>(i) * k_row_height;
    out += text_element(k_margin, y + 14, "start", labels[i]);
    const RowDrawing drawing{timeline.rows[i], labels[i], timeline.begin_us, options.slice_titles};
    add_rects(out, drawing, SliceState::waiting, x_of, y + 3);
    add_rects(out, drawing, SliceState::running, x_of, y + 3);
  }
  if (timeline.rows.empty()) out += text_element(k_margin, k_top + 14, "start", "(no activity in the trace)");

  out += "<path d=\"M" + px(x0) + " " + px(axis_y) + "H" + px(x1) + "\" stroke=\"" + k_text_fill + "\"/>\n";
  const auto tick = [&](const detail::AxisTick& t, std::string_view anchor) {
    out += "<path d=\"M" + px(x_of(t.at_us)) + " " + px(axis_y) + "v5\" stroke=\"" + k_text_fill + "\"/>\n";
    out += text_element(x_of(t.at_us), axis_y + 18, anchor, t.label, " font-size=\"11\"");
  };
  tick(axis.begin, "start");
  for (const detail::AxisTick& t : ticks) tick(t, "middle");
  if (length > 0) tick(axis.end, "end");

  out += rect("legend", k_margin, legend_y - 10, 12, 12, k_running_fill);
  out += text_element(k_margin + 18, legend_y, "start", "running");
  out += rect("legend", k_margin + 90, legend_y - 10, 12, 12, k_waiting_fill);
  out += text_element(k_margin + 108, legend_y, "start", "waiting");
  out += text_element(x1, legend_y, "end",
                      std::to_string(timeline.rows.size()) + (timeline.rows.size() == 1 ? " row (" : " rows (") +
                          to_string(timeline.mode) + "), " + detail::format_duration(length, true));
  if (more)
    out += text_element(k_margin, legend_y + 20, "start", detail::more_rows(timeline.rows.size() - shown, true));
  return out + "</svg>\n";
}

}  // namespace gearbox::lab
