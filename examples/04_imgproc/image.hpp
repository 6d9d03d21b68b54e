// Images for gearbox-imgproc: 8-bit pixels in memory, PNG in and out (libpng's simplified
// API), and the three operations the example runs: grayscale, resize and blur.
//
//   Image image = decode_png(file_bytes);            // ImageError if it is not a good PNG
//   image = blur(resize(grayscale(image), 512, 384), 2);
//   std::vector<std::byte> png = encode_png(image);
//
// Plain functions of values: thread-safe, no shared state. Deterministic: the same input
// gives the same bytes out, on every engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

namespace gearbox::imgproc {

// A PNG that cannot be decoded (not a PNG, truncated, corrupt) or an image that cannot be
// encoded; what() has libpng's reason.
struct ImageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;                   // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  std::vector<std::uint8_t> pixels;   // row after row, channels interleaved

  std::uint8_t& at(int x, int y, int c) { return pixels[(static_cast<std::size_t>(y) * width + x) * channels + c]; }
  std::uint8_t at(int x, int y, int c) const { return pixels[(static_cast<std::size_t>(y) * width + x) * channels + c]; }
  static Image blank(int width, int height, int channels);  // zero-filled; std::invalid_argument for bad sizes
};

// Decodes a PNG of any kind to 8 bits per channel, keeping gray or colour and alpha.
// ImageError if it is not a complete, valid PNG, or larger than max_pixels.
Image decode_png(std::span<const std::byte> png, std::size_t max_pixels = std::size_t{1} << 28);
std::vector<std::byte> encode_png(const Image& image);

// Luma (ITU-R BT.601 weights), keeping alpha if there is one.
Image grayscale(const Image& image);
// To width x height by box resampling: each new pixel is the area-weighted mean of the
// old pixels it covers (no aliasing when shrinking; blocky when enlarging). Done as two
// passes. std::invalid_argument for sizes < 1.
Image resize(const Image& image, int width, int height);
// A box blur of the given radius (a (2r+1)^2 mean, edges clamped), done as two passes;
// radius 0 returns the image unchanged.
Image blur(const Image& image, int radius);

// A deterministic test picture: gradients and rings, `channels` 1 to 4, varied by `seed`.
Image test_pattern(int width, int height, int channels, unsigned seed);

}  // namespace gearbox::imgproc
