// Drawing timelines: the exact text of a tiny trace in both character sets, the width
// limit whatever the labels and times, the rows left out, colour only when asked, and an
// SVG with a rect per interval and its text escaped.
#include "timeline_render.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace lab = gearbox::lab;

namespace {

// 120 µs: main runs 0-20 and 100-120 and waits between; fetch (spawned at 10) runs 30-40,
// half of the cell 40-45 and a fifth of the cell 45-50; the span tick runs 71-72 alone.
const std::string k_tiny = R"([
  {"ph":"b","cat":"task","name":"main","id":"0x1","pid":1,"tid":2,"ts":0},
  {"ph":"X","cat":"task","name":"main","pid":1,"tid":2,"ts":0,"dur":20,"args":{"task":1}},
  {"ph":"X","cat":"task","name":"main","pid":1,"tid":2,"ts":100,"dur":20,"args":{"task":1}},
  {"ph":"e","cat":"task","id":"0x1","pid":1,"tid":2,"ts":120},
  {"ph":"b","cat":"task","name":"fetch","id":"0x2","pid":1,"tid":2,"ts":10},
  {"ph":"X","cat":"task","name":"fetch","pid":1,"tid":2,"ts":30,"dur":10,"args":{"task":2}},
  {"ph":"X","cat":"task","name":"fetch","pid":1,"tid":2,"ts":42.5,"dur":2.5,"args":{"task":2}},
  {"ph":"X","cat":"task","name":"fetch","pid":1,"tid":2,"ts":46,"dur":1,"args":{"task":2}},
  {"ph":"e","cat":"task","id":"0x2","pid":1,"tid":2,"ts":60},
  {"ph":"X","cat":"span","name":"tick","pid":1,"tid":3,"ts":71,"dur":1}])";

lab::AsciiOptions narrow(bool unicode) {
  lab::AsciiOptions options;
  options.width = 30;  // a label column of 5, then 24 cells of 5 µs
  options.unicode = unicode;
  return options;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

std::size_t code_points(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A timeline built directly: `rows` rows, each with a running and a waiting interval.
lab::Timeline made_up(std::size_t rows, const std::string& label, double begin, double end) {
  lab::Timeline t;
  t.begin_us = begin;
  t.end_us = end;
  const double third = (end - begin) / 3;
  for (std::size_t i = 0; i < rows; ++i)
    t.rows.push_back({label + std::to_string(i),
                      {{begin, begin + third, lab::SliceState::running, 0},
                       {begin + third, end, lab::SliceState::waiting, 0}},
                      begin});
  return t;
}

}  // namespace

TEST(RenderAscii, a_tiny_trace_draws_exactly_in_unicode) {
  const std::string expected = "main  ████░░░░░░░░░░░░░░░░████\n"
                               "fetch   ░░░░███░░░\n"
                               "tick                ░\n"
                               "      ├─────────┬────────────┤\n"
                               "      0 µs      50 µs   120 µs\n"
                               "      █ running  ░ waiting\n";
  EXPECT_EQ(lab::render_ascii(lab::parse_timeline(k_tiny), narrow(true)), expected);
}

TEST(RenderAscii, a_tiny_trace_draws_exactly_in_ascii) {
  const std::string expected = "main  ####................####\n"
                               "fetch   ....###...\n"
                               "tick                .\n"
                               "      +---------+------------+\n"
                               "      0 us      50 us   120 us\n"
                               "      # running  . waiting\n";
  EXPECT_EQ(lab::render_ascii(lab::parse_timeline(k_tiny), narrow(false)), expected);
}

TEST(RenderAscii, rows_beyond_max_rows_are_counted_not_drawn) {
  lab::AsciiOptions options = narrow(false);
  options.max_rows = 2;
  const auto lines = lines_of(lab::render_ascii(lab::parse_timeline(k_tiny), options));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[1], "fetch   ....###...");
  EXPECT_EQ(lines[5], "... and 1 more row");

  options.unicode = true;
  const auto many = lab::render_ascii(made_up(20000, "task ", 0, 1e6), options);
  EXPECT_EQ(lines_of(many).size(), 2u + 3u + 1u);
  EXPECT_EQ(lines_of(many).back(), "… and 19998 more rows");
}

TEST(RenderAscii, no_line_is_wider_than_the_width_whatever_the_labels_and_times) {
  const std::string long_label = std::string(200, 'x') + "é漢\x01";
  const std::vector<lab::Timeline> timelines = {
      lab::parse_timeline(k_tiny), made_up(40, long_label, 0, 3),
      made_up(3, "l", 1.7e15, 1.7e15 + 2.5e6),        // absolute clock times
      made_up(3, "l", -1e18, 1e18),                   // the widest times a trace can hold
      made_up(3, "l", 5, 5),                          // no length at all
      made_up(100000, "", 0, 0.001)};
  for (const lab::Timeline& timeline : timelines) {
    for (std::size_t width = 0; width <= 130; width += 13) {
      for (bool unicode : {true, false}) {
        lab::AsciiOptions options;
        options.width = width;
        options.unicode = unicode;
        options.max_rows = 5;
        const std::string text = lab::render_ascii(timeline, options);
        for (const std::string& line : lines_of(text)) {
          EXPECT_LE(code_points(line), std::max(width, lab::AsciiOptions::k_min_width)) << line;
          if (!unicode) {
            EXPECT_EQ(code_points(line), line.size()) << "not ASCII: " << line;
          }
        }
      }
    }
  }
}

TEST(RenderAscii, labels_cannot_smuggle_control_characters_and_colour_comes_only_when_asked) {
  auto t = made_up(2, "evil\x1b[31m\n\x7f\u0085", 0, 10);
  lab::AsciiOptions options = narrow(true);
  const std::string plain = lab::render_ascii(t, options);
  EXPECT_EQ(plain.find('\x1b'), std::string::npos) << plain;
  EXPECT_EQ(lines_of(plain)[0].substr(0, 5), "evil?");
  EXPECT_EQ(count(plain, "\n"), 2u + 3u);
  options.color = true;
  const std::string coloured = lab::render_ascii(t, options);
  EXPECT_NE(coloured.find("\x1b[32m█"), std::string::npos) << coloured;
  EXPECT_NE(coloured.find("\x1b[33m░"), std::string::npos) << coloured;
}

TEST(RenderAscii, an_empty_trace_says_so) {
  EXPECT_EQ(lab::render_ascii(lab::parse_timeline("[]"), {}), "(no activity in the trace)\n");
}

TEST(RenderAscii, the_locale_decides_unicode_from_the_first_variable_that_is_set) {
  EXPECT_TRUE(lab::is_utf8_locale(nullptr, nullptr, "en_US.UTF-8"));
  EXPECT_TRUE(lab::is_utf8_locale("", "de_DE.utf8", "C"));
  EXPECT_FALSE(lab::is_utf8_locale("C", "en_US.UTF-8", "en_US.UTF-8"));
  EXPECT_FALSE(lab::is_utf8_locale("POSIX", nullptr, nullptr));
  EXPECT_FALSE(lab::is_utf8_locale(nullptr, nullptr, nullptr));
}

TEST(RenderSvg, the_svg_has_a_rect_per_interval_and_its_text_escaped) {
  const auto t = lab::parse_timeline(k_tiny);
  lab::SvgOptions options;
  options.title = "a <small> & \"tiny\" trace";
  const std::string svg = lab::render_svg(t, options);
  EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(svg.ends_with("</svg>\n"));
  std::size_t intervals = 0;
  for (const auto& row : t.rows) intervals += row.intervals.size();
  EXPECT_EQ(intervals, 3u + 7u + 1u);
  EXPECT_EQ(count(svg, "<rect class=\"run\"") + count(svg, "<rect class=\"wait\""), intervals);
  EXPECT_EQ(count(svg, "<rect"), intervals + 3);  // the background and two legend swatches
  EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
  EXPECT_NE(svg.find(">a &lt;small&gt; &amp; &quot;tiny&quot; trace</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">fetch</text>"), std::string::npos);
  EXPECT_NE(svg.find(">120 µs</text>"), std::string::npos);
}

TEST(RenderSvg, hostile_labels_stay_text_and_extra_rows_are_counted) {
  const auto t = made_up(20, "<script>alert(1)</script>\x01&", 0, 1000);
  lab::SvgOptions options;
  options.max_rows = 4;
  const std::string svg = lab::render_svg(t, options);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_EQ(svg.find('\x01'), std::string::npos);
  EXPECT_NE(svg.find(">&lt;script&gt;alert(1)&lt;/script&gt;?&amp;0</text>"), std::string::npos) << svg;
  EXPECT_EQ(count(svg, "<rect class=\"run\""), 4u);
  EXPECT_NE(svg.find(">… and 16 more rows</text>"), std::string::npos);
}

TEST(RenderSvg, a_row_of_a_million_slices_is_drawn_with_at_most_a_rect_per_pixel) {
  lab::Timeline t;
  t.end_us = 2e6;
  t.rows.push_back({"busy", {}, 0});
  for (int i = 0; i < 1000000; ++i)
    t.rows[0].intervals.push_back({2.0 * i, 2.0 * i + 1, lab::SliceState::running, 0});
  const std::string svg = lab::render_svg(t, {});
  EXPECT_GE(count(svg, "<rect class=\"run\""), 1u);
  EXPECT_LE(count(svg, "<rect class=\"run\""), 900u);
}
