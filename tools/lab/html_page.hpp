// HtmlPage: the lab's results as one self-contained HTML page, for learners who would
// rather look than read (gearbox-lab --html FILE, gearbox-lab compare ... --html FILE).
//
//   lab::HtmlPage page("gearbox-lab: the demonstration");
//   lab::add_experiment(page, "1. I/O-bound: 5 tasks ...", experiment, cores);
//   lab::add_share(page, runs, spec);
//   lab::add_guide(page, load_results(), cores);
//   page.write("lab.html");
//
// The page holds everything it shows: its style sheet inline, each timeline as inline SVG
// (a bar's hover names its task, the thread that ran it, its start and its length), no
// script, nothing fetched from elsewhere, so it opens the same offline, mailed or archived.
// Text is escaped; tables carry the figures as the terminal shows them. The machine the
// figures were measured on ends the page.
//
// Not thread-safe: one thread builds a page.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment.hpp"
#include "share.hpp"

namespace gearbox::lab {

struct HtmlTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::size_t text_columns = 1;  // the first columns are text (left-aligned), the rest figures
};

class HtmlPage {
public:
  explicit HtmlPage(std::string title);

  void section(const std::string& heading);  // an <h2> and a <section> until the next one
  void paragraph(const std::string& text, const std::string& css_class = {});
  void table(const HtmlTable& table);
  void svg(const std::string& svg_document);  // an SVG document from render_svg, inlined
  void preformatted(const std::string& text);

  // The whole page, with the machine's description at the end.
  std::string html() const;
  // Writes html() to `path`; std::runtime_error naming the file if it cannot.
  void write(const std::filesystem::path& path) const;

private:
  std::string m_title;
  std::string m_body;
  bool m_in_section = false;
};

// "<tag>" -> "&lt;tag&gt;", and quotes, for text and attribute values.
std::string html_escape(std::string_view text);

// One experiment: its table, a timeline per model that was traced (units as rows), and
// the verdict.
void add_experiment(HtmlPage& page, const std::string& heading, const Experiment& experiment, unsigned cores);
// gearbox-lab share: the table, each row's reason, the lessons.
void add_share(HtmlPage& page, const std::vector<ShareRun>& runs, const ShareSpec& spec);
// The guide's decision table with this machine's figures (what `gearbox-lab guide` prints).
void add_guide(HtmlPage& page, const nlohmann::json& results, unsigned cores);

// "2 cores (AMD EPYC 7B13), 23.5 GiB, Linux 6.1.0-18-amd64, g++ 12.2.0, optimised build".
std::string describe_machine();

}  // namespace gearbox::lab
