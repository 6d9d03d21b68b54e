// README's C++ samples are compiled (tests/docs/readme/*.cpp, each in the context it
// needs, as the readme_samples object library); this test proves that README shows
// exactly the compiled text: every ```cpp block of README.md is the marked region of one
// sample file, and every sample file's region is in README.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

const std::filesystem::path k_source_dir = GEARBOX_SOURCE_DIR;

std::string read_whole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text between each `open` line and the next `close` line (both excluded).
std::vector<std::string> regions(const std::string& text, const std::string& open, const std::string& close) {
  std::vector<std::string> found;
  std::size_t at = 0;
  while ((at = text.find(open, at)) != std::string::npos) {
    const std::size_t begin = at + open.size();
    const std::size_t end = text.find(close, begin);
    if (end == std::string::npos) throw std::runtime_error("unterminated region after " + open);
    found.push_back(text.substr(begin, end - begin));
    at = end + close.size();
  }
  return found;
}

TEST(ReadmeSamples, every_cpp_block_of_the_readme_is_a_compiled_sample_and_every_sample_is_shown) {
  const std::vector<std::string> blocks = regions(read_whole(k_source_dir / "README.md"), "```cpp\n", "```");
  std::map<std::string, std::string> samples;  // region -> file
  for (const auto& entry : std::filesystem::directory_iterator(k_source_dir / "tests/docs/readme")) {
    const auto found = regions(read_whole(entry.path()), "// README sample begin\n", "// README sample end\n");
    ASSERT_EQ(found.size(), 1u) << entry.path() << " must hold one marked sample";
    samples.emplace(found.front(), entry.path().filename().string());
  }
  ASSERT_FALSE(blocks.empty());
  for (const std::string& block : blocks)
    EXPECT_TRUE(samples.contains(block)) << "README block not compiled by any tests/docs/readme/*.cpp:\n" << block;
  for (const auto& [region, file] : samples)
    EXPECT_NE(std::find(blocks.begin(), blocks.end(), region), blocks.end())
        << file << "'s sample is not in README.md (or differs from it):\n" << region;
}

}  // namespace
