#include "html_page.hpp"

#include <sys/utsname.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "build_info.hpp"
#include "guide.hpp"
#include "lab_format.hpp"
#include "timeline_render.hpp"

namespace gearbox::lab {
namespace {

// Light and dark, readable at any width; no fonts or images from elsewhere.
constexpr const char* k_style = R"(
  :root { color-scheme: light; --ink: #24292f; --muted: #57606a; --line: #d8dee4; --run: #2f6fb3; --wait: #b9d3ef; }
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0 auto;
         max-width: 980px; padding: 24px; }
  h1 { font-size: 26px; margin: 0 0 4px; }
  h2 { font-size: 19px; margin: 36px 0 8px; padding-top: 12px; border-top: 1px solid var(--line); }
  p.lead { color: var(--muted); margin-top: 0; }
  p.verdict { background: #f3f8fd; border-left: 4px solid var(--run); padding: 8px 12px; }
  table { border-collapse: collapse; margin: 8px 0 12px; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
  th { font-weight: 600; border-bottom: 2px solid var(--ink); }
  th.text, td.text { text-align: left; }
  pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 13px; line-height: 1.35; }
  figure { margin: 8px 0 16px; overflow-x: auto; }
  svg rect.run:hover, svg rect.wait:hover { stroke: var(--ink); stroke-width: 1; }
  footer { margin-top: 36px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); padding-top: 8px; }
)";

std::string read_first(const char* path, const std::string& key) {
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);)
    if (line.rfind(key, 0) == 0) {
      const auto colon = line.find(':');
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  return {};
}

std::string seconds_cell(double s) { return s < 10 ? printf_string("%.2f s", s) : printf_string("%.1f s", s); }

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&#39;"; break;
    default: out += c;
    }
  }
  return out;
}

HtmlPage::HtmlPage(std::string title) : m_title(std::move(title)) {}

void HtmlPage::section(const std::string& heading) {
  if (m_in_section) m_body += "</section>\n";
  m_body += "<section>\n<h2>" + html_escape(heading) + "</h2>\n";
  m_in_section = true;
}

void HtmlPage::paragraph(const std::string& text, const std::string& css_class) {
  m_body += (css_class.empty() ? "<p>" : "<p class=\"" + html_escape(css_class) + "\">") + html_escape(text) + "</p>\n";
}

void HtmlPage::table(const HtmlTable& table) {
  const auto cell = [&](const char* tag, std::size_t column, const std::string& text) {
    const char* align = column < table.text_columns ? " class=\"text\"" : "";
    return "<" + std::string(tag) + align + ">" + html_escape(text) + "</" + tag + ">";
  };
  m_body += "<table>\n<thead><tr>";
  for (std::size_t c = 0; c < table.header.size(); ++c) m_body += cell("th", c, table.header[c]);
  m_body += "</tr></thead>\n<tbody>\n";
  for (const auto& row : table.rows) {
    m_body += "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) m_body += cell("td", c, row[c]);
    m_body += "</tr>\n";
  }
  m_body += "</tbody>\n</table>\n";
}

void HtmlPage::svg(const std::string& svg_document) {
  // An SVG document is valid inside HTML as it is (render_svg writes no XML declaration).
  m_body += "<figure class=\"timeline\">\n" + svg_document + "</figure>\n";
}

void HtmlPage::preformatted(const std::string& text) { m_body += "<pre>" + html_escape(text) + "</pre>\n"; }

std::string HtmlPage::html() const {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
                    html_escape(m_title) + "</title>\n<style>" + k_style + "</style>\n</head>\n<body>\n<h1>" +
                    html_escape(m_title) + "</h1>\n";
  out += m_body;
  if (m_in_section) out += "</section>\n";
  out += "<footer id=\"machine\">Measured on " + html_escape(describe_machine()) +
         ". Timelines: hover over a bar for its task, thread, start and length. Made by gearbox-lab.</footer>\n";
  return out + "</body>\n</html>\n";
}

void HtmlPage::write(const std::filesystem::path& path) const {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  const std::string text = html();
  file << text;
  file.close();
  if (!file) throw std::runtime_error(path.string() + ": cannot write the page");
}

void add_experiment(HtmlPage& page, const std::string& heading, const Experiment& e, unsigned cores) {
  page.section(heading);
  HtmlTable table{{"model", "wall", "CPU", "CPU use", "peak memory", "speedup"}, {}, 1};
  for (const ModelResult& r : e.results) {
    if (!r.error.empty()) {
      table.rows.push_back({to_string(r.model), "failed: " + r.error, "", "", "", ""});
      continue;
    }
    const double speedup = e.speedup(r);
    table.rows.push_back({to_string(r.model), seconds_cell(r.wall_s), seconds_cell(r.cpu_s()),
                          printf_string("%.0f%%", r.utilisation(cores) * 100),
                          printf_string("%.1f MB", static_cast<double>(r.peak_rss_kb) / 1024),
                          speedup > 0 ? printf_string("%.2f×", speedup) : "-"});
  }
  page.table(table);
  for (const ModelResult& r : e.results) {
    if (r.trace.empty() || !r.error.empty()) continue;
    try {
      SvgOptions options;
      options.title = std::string(to_string(r.model)) + ": who ran when";
      options.slice_titles = true;
      options.max_rows = 24;
      page.svg(render_svg(task_timeline(r.trace), options));
    } catch (const std::exception& error) {
      page.paragraph(std::string("(no timeline for ") + to_string(r.model) + ": " + error.what() + ")");
    }
  }
  page.paragraph("Verdict: " + verdict(e, cores), "verdict");
}

void add_share(HtmlPage& page, const std::vector<ShareRun>& runs, const ShareSpec& spec) {
  page.section("Who shares memory, and where a switch can happen");
  page.paragraph(std::to_string(spec.units) + " units each add 1 to one counter " + with_commas(spec.increments) +
                 " times: " + with_commas(static_cast<long long>(spec.units) * spec.increments) + " expected.");
  HtmlTable table{{"who adds", "final count", "lost updates", "time", "why"}, {}, 1};
  for (const ShareRun& run : runs)
    table.rows.push_back({label(run.which), with_commas(run.final_count), share_lost_cell(run),
                          printf_string("%.2f ms", run.wall_s * 1e3), share_reason(run)});
  page.table(table);
  page.paragraph(share_lessons(runs), "verdict");
}

void add_guide(HtmlPage& page, const nlohmann::json& results, unsigned cores) {
  page.section("When to use which model, with this machine's figures");
  HtmlTable table{{"the work", "use", "why"}, {}, 3};
  for (const GuideRow& row : k_guide_rows) table.rows.push_back({row.work, row.use, row.why});
  page.table(table);
  page.preformatted(render_guide_figures(results, cores));
}

std::string describe_machine() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::string out = std::to_string(cores) + (cores == 1 ? " core" : " cores");
  if (const std::string cpu = read_first("/proc/cpuinfo", "model name"); !cpu.empty()) out += " (" + cpu + ")";
  if (const std::string memory = read_first("/proc/meminfo", "MemTotal"); !memory.empty())
    out += ", " + human_bytes(std::stod(memory) * 1024);
  utsname name{};
  if (::uname(&name) == 0) out += std::string(", ") + name.sysname + " " + name.release;
#if defined(__clang__)
  out += ", clang " __clang_version__;
#elif defined(__GNUC__)
  out += ", g++ " __VERSION__;
#endif
  return out + ", " + std::string(k_build_kind) + " build";
}

}  // namespace gearbox::lab
