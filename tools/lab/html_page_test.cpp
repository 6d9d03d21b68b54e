// The lab's HTML page: what it holds, checked on a page built from fixed results and a
// small trace; then the same page in a real browser (headless Chromium, installed by
// scripts/setup): the DOM it builds has every table and timeline, and its screenshot has
// the timelines' running and waiting bars in it.
#include "html_page.hpp"

#include <png.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/temp_dir.hpp"

namespace lab = gearbox::lab;
namespace fs = std::filesystem;

namespace {

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// Two tasks on a loop of two workers (tids 11 and 12): task 1 runs, waits, then runs on
// the other worker; task 2 runs once.
fs::path write_trace(const fs::path& dir) {
  const fs::path file = dir / "trace.json";
  std::ofstream(file) << R"({"traceEvents":[
    {"ph":"b","cat":"task","name":"task 1","id":"0x1","pid":7,"tid":11,"ts":0},
    {"ph":"X","cat":"task","name":"task 1","pid":7,"tid":11,"ts":0,"dur":300,"args":{"task":1}},
    {"ph":"X","cat":"task","name":"task 1","pid":7,"tid":12,"ts":700,"dur":300,"args":{"task":1}},
    {"ph":"e","cat":"task","name":"task 1","id":"0x1","pid":7,"tid":12,"ts":1000},
    {"ph":"b","cat":"task","name":"task 2","id":"0x2","pid":7,"tid":11,"ts":0},
    {"ph":"X","cat":"task","name":"task 2","pid":7,"tid":11,"ts":300,"dur":400,"args":{"task":2}},
    {"ph":"e","cat":"task","name":"task 2","id":"0x2","pid":7,"tid":11,"ts":700}]})";
  return file;
}

lab::ModelResult result(lab::Model model, double wall_s, const fs::path& trace) {
  lab::ModelResult r;
  r.model = model;
  r.wall_s = wall_s;
  r.user_s = 0.05;
  r.peak_rss_kb = 5'000;
  r.tasks_done = 2;
  r.trace = trace;
  return r;
}

std::string sample_page(const fs::path& trace) {
  lab::Experiment e;
  e.spec.work = lab::Work::io;
  e.spec.tasks = 2;
  e.results = {result(lab::Model::sequential, 2.0, trace), result(lab::Model::async, 1.0, trace),
               result(lab::Model::threads, 1.0, {})};
  e.results.back().error = "<script>alert(1)</script> went wrong";
  lab::HtmlPage page("gearbox-lab & friends");
  lab::add_experiment(page, "1. I/O-bound", e, 2);
  const lab::ShareSpec spec{2, 10};
  lab::add_share(page, {lab::ShareRun{lab::ShareCase::threads_mutex, 20, 20, 0.001}}, spec);
  lab::add_guide(page, nlohmann::json::object(), 2);
  return page.html();
}

}  // namespace

TEST(HtmlPage, holds_every_table_timeline_and_verdict_and_the_machine_and_escapes_text) {
  const gearbox_test::TempDir dir;
  const std::string html = sample_page(write_trace(dir.path()));
  EXPECT_EQ(count(html, "<table>"), 3u);                    // the experiment's, share's, the guide's
  EXPECT_EQ(count(html, "<svg "), 2u);                      // sequential's and async's; threads failed
  EXPECT_EQ(count(html, "<p class=\"verdict\">Verdict: "), 1u);
  EXPECT_NE(html.find("<title>gearbox-lab &amp; friends</title>"), std::string::npos);
  EXPECT_NE(html.find("failed: &lt;script&gt;alert(1)&lt;/script&gt; went wrong"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("When to use which model"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"text\">computes, and may crash or leak</td>"), std::string::npos);
  EXPECT_NE(html.find("Where C++ differs from Python"), std::string::npos);
  EXPECT_NE(html.find("<footer id=\"machine\">Measured on "), std::string::npos);
  // Nothing is fetched at view time: no link, image, script or style sheet from elsewhere.
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
}

TEST(HtmlPage, a_bar_names_its_task_state_start_length_and_the_threads_that_ran_it) {
  const gearbox_test::TempDir dir;
  const std::string html = sample_page(write_trace(dir.path()));
  EXPECT_TRUE(std::regex_search(html, std::regex("<title>task 1: running 300 µs from 0 µs, on thread 11</title>")))
      << html;
  EXPECT_TRUE(std::regex_search(html, std::regex("<title>task 1: running 300 µs from 700 µs, on thread 12</title>")));
  EXPECT_TRUE(std::regex_search(html, std::regex("<title>task 1: waiting 400 µs from 300 µs</title>")));
  EXPECT_TRUE(std::regex_search(html, std::regex("<title>task 2: running 400 µs from 300 µs, on thread 11</title>")));
}

TEST(HtmlPage, an_unwritable_file_is_an_error_that_names_it) {
  const lab::HtmlPage page("x");
  try {
    page.write("/no/such/dir/page.html");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "/no/such/dir/page.html: cannot write the page");
  }
}

namespace {

std::string chromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(path, X_OK) == 0) return path;
  return {};
}

// Runs headless Chromium on `page` with `arguments`; its standard output.
std::string run_chromium(const fs::path& scratch, const std::string& arguments, const fs::path& page) {
  const fs::path out = scratch / "chromium.out";
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  const std::string command = "timeout 120 " + chromium() + " --headless --no-sandbox --disable-gpu --no-first-run" +
                              " --user-data-dir=" + (scratch / "profile").string() + " " + arguments + " file://" +
                              page.string() + " > " + out.string() + " 2> " + (scratch / "chromium.err").string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream file(out);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// How many pixels of the screenshot have exactly the colour `rgb`.
long pixels_of(const fs::path& png, std::uint32_t rgb) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png.c_str())) return -1;
  image.format = PNG_FORMAT_RGB;
  std::vector<unsigned char> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return -1;
  long n = 0;
  for (std::size_t i = 0; i + 2 < pixels.size(); i += 3)
    n += ((std::uint32_t{pixels[i]} << 16) | (std::uint32_t{pixels[i + 1]} << 8) | pixels[i + 2]) == rgb;
  return n;
}

}  // namespace

TEST(HtmlPage, a_real_browser_renders_every_table_and_timeline) {
  ASSERT_FALSE(chromium().empty()) << "chromium is not installed: run scripts/setup";
  const gearbox_test::TempDir dir;
  const fs::path page = dir.path() / "page.html";
  std::ofstream(page) << sample_page(write_trace(dir.path()));

  const std::string dom = run_chromium(dir.path(), "--dump-dom", page);
  EXPECT_EQ(count(dom, "<table>"), 3u) << dom.substr(0, 2000);
  EXPECT_EQ(count(dom, "<tbody>\n<tr><td"), 3u);  // each table has rows
  EXPECT_NE(dom.find("<td class=\"text\">a ProcessPool</td>"), std::string::npos);
  EXPECT_EQ(count(dom, "<svg "), 2u);
  EXPECT_GE(count(dom, "<rect class=\"run\""), 6u);  // 3 running bars in each timeline
  EXPECT_GE(count(dom, "<rect class=\"wait\""), 2u);
  EXPECT_NE(dom.find("on thread 12</title>"), std::string::npos);
  EXPECT_NE(dom.find("<footer id=\"machine\">Measured on "), std::string::npos);

  const fs::path shot = dir.path() / "page.png";
  run_chromium(dir.path(), "--hide-scrollbars --window-size=1000,1400 --screenshot=" + shot.string(), page);
  EXPECT_GT(pixels_of(shot, 0x2f6fb3), 1000) << "no running bars drawn";  // the SVG's fills
  EXPECT_GT(pixels_of(shot, 0xb9d3ef), 100) << "no waiting bars drawn";
}
