#include "image.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace gearbox::imgproc {
namespace {

png_uint_32 format_of(int channels) {
  switch (channels) {
  case 1: return PNG_FORMAT_GRAY;
  case 2: return PNG_FORMAT_GA;
  case 3: return PNG_FORMAT_RGB;
  case 4: return PNG_FORMAT_RGBA;
  }
  throw std::invalid_argument("gearbox-imgproc: an image has 1 to 4 channels");
}

// One pass of box resampling along rows (`horizontal`) or columns: from `from` samples to
// `to` samples per line, each output the coverage-weighted mean of the inputs it spans.
Image resample(const Image& in, int to, bool horizontal) {
  const int from = horizontal ? in.width : in.height;
  Image out = Image::blank(horizontal ? to : in.width, horizontal ? in.height : to, in.channels);
  const int lines = horizontal ? in.height : in.width;
  const double scale = static_cast<double>(from) / to;  // input samples per output sample
  std::vector<double> sum(static_cast<std::size_t>(in.channels));
  for (int line = 0; line < lines; ++line) {
    for (int o = 0; o < to; ++o) {
      const double start = o * scale;
      const double end = start + scale;
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int i = static_cast<int>(start); i < from && i < end; ++i) {
        const double weight = std::min<double>(i + 1, end) - std::max<double>(i, start);
        for (int c = 0; c < in.channels; ++c)
          sum[static_cast<std::size_t>(c)] += weight * (horizontal ? in.at(i, line, c) : in.at(line, i, c));
      }
      for (int c = 0; c < in.channels; ++c) {
        const auto value = static_cast<std::uint8_t>(std::clamp(std::lround(sum[static_cast<std::size_t>(c)] / scale), 0L, 255L));
        (horizontal ? out.at(o, line, c) : out.at(line, o, c)) = value;
      }
    }
  }
  return out;
}

// One pass of the box blur along rows or columns, with a running sum (O(1) per pixel).
Image box_pass(const Image& in, int radius, bool horizontal) {
  Image out = Image::blank(in.width, in.height, in.channels);
  const int length = horizontal ? in.width : in.height;
  const int lines = horizontal ? in.height : in.width;
  const int window = 2 * radius + 1;
  auto sample = [&](int line, int i, int c) {
    i = std::clamp(i, 0, length - 1);
    return horizontal ? in.at(i, line, c) : in.at(line, i, c);
  };
  for (int line = 0; line < lines; ++line) {
    for (int c = 0; c < in.channels; ++c) {
      int sum = 0;
      for (int i = -radius; i <= radius; ++i) sum += sample(line, i, c);
      for (int i = 0; i < length; ++i) {
        (horizontal ? out.at(i, line, c) : out.at(line, i, c)) = static_cast<std::uint8_t>((sum + window / 2) / window);
        sum += sample(line, i + radius + 1, c) - sample(line, i - radius, c);
      }
    }
  }
  return out;
}

}  // namespace

Image Image::blank(int width, int height, int channels) {
  if (width < 1 || height < 1 || channels < 1 || channels > 4)
    throw std::invalid_argument("gearbox-imgproc: an image needs a size of at least 1x1 and 1 to 4 channels");
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.assign(static_cast<std::size_t>(width) * height * channels, 0);
  return image;
}

Image decode_png(std::span<const std::byte> png, std::size_t max_pixels) {
  png_image info;
  std::memset(&info, 0, sizeof info);
  info.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&info, png.data(), png.size()))
    throw ImageError(std::string("not a readable PNG: ") + info.message);
  if (static_cast<std::size_t>(info.width) * info.height > max_pixels) {
    png_image_free(&info);
    throw ImageError("the image is too large: " + std::to_string(info.width) + "x" + std::to_string(info.height));
  }
  const int channels = PNG_IMAGE_SAMPLE_CHANNELS(info.format);
  info.format = format_of(channels);  // 8 bits per channel, no colour map
  Image image = Image::blank(static_cast<int>(info.width), static_cast<int>(info.height), channels);
  if (!png_image_finish_read(&info, nullptr, image.pixels.data(), 0, nullptr))
    throw ImageError(std::string("a corrupt PNG: ") + info.message);  // finish_read freed it
  return image;
}

std::vector<std::byte> encode_png(const Image& image) {
  png_image info;
  std::memset(&info, 0, sizeof info);
  info.version = PNG_IMAGE_VERSION;
  info.width = static_cast<png_uint_32>(image.width);
  info.height = static_cast<png_uint_32>(image.height);
  info.format = format_of(image.channels);
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&info, nullptr, &size, 0, image.pixels.data(), 0, nullptr))
    throw ImageError(std::string("cannot encode the PNG: ") + info.message);
  std::vector<std::byte> out(size);
  if (!png_image_write_to_memory(&info, out.data(), &size, 0, image.pixels.data(), 0, nullptr))
    throw ImageError(std::string("cannot encode the PNG: ") + info.message);
  out.resize(size);
  return out;
}

Image grayscale(const Image& image) {
  if (image.channels <= 2) return image;
  const bool alpha = image.channels == 4;
  Image out = Image::blank(image.width, image.height, alpha ? 2 : 1);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      // BT.601 luma in fixed point: 0.299 R + 0.587 G + 0.114 B.
      const int luma = (299 * image.at(x, y, 0) + 587 * image.at(x, y, 1) + 114 * image.at(x, y, 2) + 500) / 1000;
      out.at(x, y, 0) = static_cast<std::uint8_t>(luma);
      if (alpha) out.at(x, y, 1) = image.at(x, y, 3);
    }
  }
  return out;
}

Image resize(const Image& image, int width, int height) {
  if (width < 1 || height < 1) throw std::invalid_argument("gearbox-imgproc: resize to at least 1x1");
  return resample(resample(image, width, true), height, false);
}

Image blur(const Image& image, int radius) {
  if (radius < 0) throw std::invalid_argument("gearbox-imgproc: a blur radius is 0 or more");
  if (radius == 0) return image;
  return box_pass(box_pass(image, radius, true), radius, false);
}

Image test_pattern(int width, int height, int channels, unsigned seed) {
  Image image = Image::blank(width, height, channels);
  const double cx = width * (0.3 + 0.4 * ((seed * 37) % 100) / 100.0);
  const double cy = height * (0.3 + 0.4 * ((seed * 61) % 100) / 100.0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double ring = 127.5 + 127.5 * std::sin(std::hypot(x - cx, y - cy) / (6.0 + seed % 7));
      for (int c = 0; c < channels; ++c) {
        const int gradient = c == 0 ? 255 * x / std::max(1, width - 1) : c == 1 ? 255 * y / std::max(1, height - 1) : 128;
        const int value = c == 3 ? 255 - static_cast<int>(ring) / 4 : (gradient + static_cast<int>(ring)) / 2;
        image.at(x, y, c) = static_cast<std::uint8_t>(std::clamp(value, 0, 255));
      }
    }
  }
  return image;
}

}  // namespace gearbox::imgproc
