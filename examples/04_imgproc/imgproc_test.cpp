// gearbox-imgproc: the operations on small images with known answers, PNG round trips,
// corrupt input refused with a reason, and a batch on each engine: the same output bytes
// everywhere, and a bad file failing alone.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <numeric>

#include <gearbox/gearbox.hpp>

#include "batch.hpp"
#include "image.hpp"

namespace gb = gearbox;
namespace ip = gearbox::imgproc;

namespace {

ip::Image constant(int width, int height, int channels, std::uint8_t value) {
  ip::Image image = ip::Image::blank(width, height, channels);
  std::fill(image.pixels.begin(), image.pixels.end(), value);
  return image;
}

long sum_of(const ip::Image& image) { return std::accumulate(image.pixels.begin(), image.pixels.end(), 0L); }

std::vector<char> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A directory of 5 good PNGs (RGB and RGBA) and 2 bad files, removed at the end.
struct Inputs {
  Inputs() {
    dir = std::filesystem::path(::testing::TempDir()) / ("imgproc-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "in");
    for (int i = 0; i < 5; ++i)
      write_bytes(dir / "in" / ("good-" + std::to_string(i) + ".png"), ip::encode_png(ip::test_pattern(64 + i, 48, 3 + i % 2, i)));
    std::vector<std::byte> png = ip::encode_png(ip::test_pattern(64, 48, 3, 9));
    png.resize(png.size() / 2);
    write_bytes(dir / "in" / "bad-truncated.png", png);
    const std::string text = "this is not a PNG at all";
    write_bytes(dir / "in" / "bad-text.png", std::as_bytes(std::span(text.data(), text.size())));
  }
  ~Inputs() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

}  // namespace

TEST(Image, grayscale_uses_bt601_weights_and_keeps_alpha) {
  ip::Image image = ip::Image::blank(3, 1, 4);
  const std::uint8_t pixels[] = {255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30};
  std::copy(std::begin(pixels), std::end(pixels), image.pixels.begin());
  const ip::Image gray = ip::grayscale(image);
  ASSERT_EQ(gray.channels, 2);
  EXPECT_EQ(gray.at(0, 0, 0), 76);   // 0.299 * 255
  EXPECT_EQ(gray.at(1, 0, 0), 150);  // 0.587 * 255
  EXPECT_EQ(gray.at(2, 0, 0), 29);   // 0.114 * 255
  EXPECT_EQ(gray.at(0, 0, 1), 10);
  EXPECT_EQ(gray.at(2, 0, 1), 30);
  EXPECT_EQ(ip::grayscale(gray).pixels, gray.pixels) << "already gray: unchanged";
}

TEST(Image, resize_gives_the_asked_size_and_averages_what_each_pixel_covers) {
  ip::Image image = ip::Image::blank(4, 2, 1);
  image.pixels = {0, 100, 200, 255, 0, 100, 200, 255};
  const ip::Image half = ip::resize(image, 2, 1);
  ASSERT_EQ(half.width, 2);
  ASSERT_EQ(half.height, 1);
  EXPECT_EQ(half.at(0, 0, 0), 50);   // mean of 0, 100, 0, 100
  EXPECT_EQ(half.at(1, 0, 0), 228);  // mean of 200, 255, 200, 255 = 227.5
  const ip::Image big = ip::resize(constant(3, 3, 3, 77), 7, 5);
  EXPECT_EQ(big.width, 7);
  EXPECT_EQ(big.height, 5);
  for (std::uint8_t v : big.pixels) EXPECT_EQ(v, 77);
  EXPECT_THROW(ip::resize(image, 0, 1), std::invalid_argument);
}

TEST(Image, blur_keeps_a_flat_image_flat_spreads_a_point_and_radius_0_is_identity) {
  const ip::Image flat = ip::blur(constant(10, 8, 3, 200), 3);
  for (std::uint8_t v : flat.pixels) EXPECT_EQ(v, 200);
  ip::Image point = ip::Image::blank(9, 9, 1);
  point.at(4, 4, 0) = 162;  // 162 = 9 * 18: each pass divides by 3 exactly (after rounding)
  const ip::Image spread = ip::blur(point, 1);
  EXPECT_EQ(spread.at(4, 4, 0), 18);  // 162 / 9 (per pass: 162 / 3 = 54, then 54 / 3 = 18)
  EXPECT_EQ(spread.at(3, 3, 0), 18);
  EXPECT_EQ(spread.at(2, 2, 0), 0);
  EXPECT_EQ(sum_of(spread), 162);
  const ip::Image pattern = ip::test_pattern(20, 10, 3, 1);
  EXPECT_EQ(ip::blur(pattern, 0).pixels, pattern.pixels);
}

TEST(Png, every_channel_count_survives_a_round_trip) {
  for (int channels = 1; channels <= 4; ++channels) {
    const ip::Image image = ip::test_pattern(33, 17, channels, 5);
    const ip::Image back = ip::decode_png(ip::encode_png(image));
    EXPECT_EQ(back.width, 33);
    EXPECT_EQ(back.height, 17);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, image.pixels) << channels;
  }
}

TEST(Png, truncated_corrupt_and_foreign_bytes_are_refused_with_a_reason) {
  std::vector<std::byte> png = ip::encode_png(ip::test_pattern(64, 64, 3, 2));
  std::vector<std::byte> truncated(png.begin(), png.begin() + static_cast<long>(png.size() / 2));
  std::vector<std::byte> flipped = png;
  for (std::size_t i = png.size() / 3; i < png.size() / 3 + 40; ++i) flipped[i] ^= std::byte{0x5a};
  const std::string text = "GIF89a, not a PNG";
  for (const auto& bad : {truncated, flipped, std::vector<std::byte>(), std::vector<std::byte>(
                                                                           reinterpret_cast<const std::byte*>(text.data()),
                                                                           reinterpret_cast<const std::byte*>(text.data()) + text.size())}) {
    try {
      ip::decode_png(bad);
      ADD_FAILURE() << "decoded " << bad.size() << " bad bytes";
    } catch (const ip::ImageError& e) {
      EXPECT_GT(std::string(e.what()).size(), 20u) << e.what();
    }
  }
  EXPECT_THROW(ip::decode_png(png, 100), ip::ImageError) << "over max_pixels";
}

TEST(Batch, every_engine_writes_the_same_bytes_and_a_bad_file_fails_alone) {
  Inputs inputs;
  const std::vector<std::filesystem::path> files = ip::png_files(inputs.dir / "in");
  ASSERT_EQ(files.size(), 7u);
  gb::ThreadPool threads{{.workers = 2}};
  gb::ProcessPool processes{{.workers = 2}};
  const ip::Pipeline pipeline{.grayscale = true, .scale = 0.5, .blur_radius = 2};
  std::vector<ip::BatchResult> results;
  for (const ip::Engine engine : {ip::Engine::sequential, ip::Engine::threads, ip::Engine::processes})
    results.push_back(ip::run_batch(engine, files, inputs.dir / ip::to_string(engine), pipeline, {&threads, &processes}));
  for (const ip::BatchResult& r : results) {
    SCOPED_TRACE(ip::to_string(r.engine));
    ASSERT_EQ(r.files.size(), 7u);
    EXPECT_EQ(r.failed(), 2u);
    for (std::size_t i = 0; i < files.size(); ++i) {
      const bool bad = files[i].filename().string().starts_with("bad-");
      EXPECT_EQ(r.files[i].ok, !bad) << files[i];
      if (bad) {
        EXPECT_NE(r.files[i].error.find("PNG"), std::string::npos) << r.files[i].error;
      } else {
        const auto out = inputs.dir / ip::to_string(r.engine) / files[i].filename();
        EXPECT_EQ(file_bytes(out), file_bytes(inputs.dir / "sequential" / files[i].filename())) << out;
        // good-K was 64+K wide, 48 high, RGB for even K and RGBA for odd: now gray (with
        // alpha for odd K), half the size.
        const int k = files[i].filename().string()[5] - '0';
        const std::vector<char> bytes = file_bytes(out);
        const ip::Image image = ip::decode_png(std::as_bytes(std::span(bytes.data(), bytes.size())));
        EXPECT_EQ(image.channels, k % 2 == 0 ? 1 : 2);
        EXPECT_EQ(image.width, static_cast<int>(std::lround((64 + k) * 0.5)));
        EXPECT_EQ(image.height, 24);
      }
    }
  }
  // The processes engine reports the worker's exception by its type and message.
  const auto& failure = results[2].files[0];
  EXPECT_NE(failure.error.find("ImageError"), std::string::npos) << failure.error;
}

TEST(Batch, an_engine_without_its_pool_is_an_error) {
  EXPECT_THROW(ip::run_batch(ip::Engine::threads, {}, ::testing::TempDir(), {}), std::invalid_argument);
  EXPECT_THROW(ip::run_batch(ip::Engine::processes, {}, ::testing::TempDir(), {}), std::invalid_argument);
}

int main(int argc, char** argv) {
  gb::init(argc, argv);  // a worker never returns from here
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
