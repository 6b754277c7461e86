// gpukit/io.hpp — the io layer in one include: images and their errors, PNG and JPEG
// files, bilinear resize, image-folder datasets and their decoded cache, the synthetic
// dataset and safetensors files. Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/io/dataset.hpp"
#include "gpukit/io/image.hpp"
#include "gpukit/io/image_file.hpp"
#include "gpukit/io/jpeg.hpp"
#include "gpukit/io/png.hpp"
#include "gpukit/io/resize.hpp"
#include "gpukit/io/safetensors.hpp"
#include "gpukit/io/synthetic.hpp"
