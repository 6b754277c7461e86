// gpukit/train/history.hpp — what fit() returns per epoch (Keras' History.history), and the
// history as a CSV or JSON file for plotting (scripts/plot) or comparing runs.
//
//   train::history h = train::fit(model, train_set, o);
//   train::write_history(h, "history.csv");        // or .json
//   train::history again = train::read_history("history.csv");
//
// CSV: the header `epoch,loss,accuracy,val_loss,val_accuracy,images_per_second,seconds,
// learning_rate`, one row per epoch (epoch counted from 1), every number with 17 significant
// digits so that reading it back gives the same doubles; val_loss and val_accuracy are empty
// fields when fit had no validation set. JSON: one object of arrays under the same names,
// null where the CSV has an empty field.
// Host-only: compiles with a plain C++17 compiler.
#pragma once

#include "gpukit/core/error.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace gpukit::train {

/// Per epoch, like Keras' History.history; val_* are NaN without a validation set.
struct history {
  std::vector<double> loss, accuracy, val_loss, val_accuracy;
  std::vector<double> images_per_second;  ///< training images / the epoch's training time
  std::vector<double> seconds;            ///< the epoch's training time (validation excluded)
  std::vector<double> learning_rate;      ///< the learning rate of the epoch's last step (its schedule's)
  std::size_t epochs() const noexcept { return loss.size(); }
};

/// A history file that cannot be written or read, or does not hold a history; the message
/// names the function, the argument 'path' with its value, and what is wrong.
class history_file_error : public std::runtime_error {
 public:
  history_file_error(const std::string& file, const std::string& reason, const char* where = "gpukit::train::read_history")
      : std::runtime_error(std::string(where) + ": argument 'path' = '" + file + "': " + reason), file_(file) {}
  const std::string& file() const noexcept { return file_; }

 private:
  std::string file_;
};

namespace detail {

/// The columns of a history file, in order, and the member each one maps to (epoch aside).
using history_member = std::vector<double> history::*;

struct history_column {
  const char* name;
  history_member values;
  bool optional;  // empty / null allowed: NaN
};

inline const std::vector<history_column>& history_columns() {
  static const std::vector<history_column> columns = {
      {"loss", &history::loss, false},
      {"accuracy", &history::accuracy, false},
      {"val_loss", &history::val_loss, true},
      {"val_accuracy", &history::val_accuracy, true},
      {"images_per_second", &history::images_per_second, false},
      {"seconds", &history::seconds, false},
      {"learning_rate", &history::learning_rate, false},
  };
  return columns;
}

/// Throws std::invalid_argument unless every column of `h` has one value per epoch.
inline void check_history_columns(const history& h, const char* where) {
  for (const history_column& c : history_columns()) {
    const std::size_t n = (h.*c.values).size();
    gpukit::detail::require(n == h.epochs(), where,
                            std::string("argument 'h' has ") + std::to_string(h.epochs()) + " loss values but " +
                                std::to_string(n) + " " + c.name + " values");
  }
}

inline std::string round_trip(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

/// The format a path's extension names: true for JSON, false for CSV; throws otherwise.
inline bool history_is_json(const std::string& path, const char* where) {
  const auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    if (path.size() < e.size()) return false;
    for (std::size_t i = 0; i < e.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(path[path.size() - e.size() + i])) != e[i]) return false;
    return true;
  };
  if (ends_with(".json")) return true;
  if (ends_with(".csv")) return false;
  gpukit::detail::require(false, where, "argument 'path' = '" + path + "' ends neither in .csv nor in .json");
  return false;
}

inline double parse_number(const std::string& field, const std::string& file, std::size_t row, const char* column) {
  try {
    std::size_t used = 0;
    const double v = std::stod(field, &used);
    if (used == field.size()) return v;
  } catch (const std::exception&) {
  }
  throw history_file_error(file, "row " + std::to_string(row) + ", column " + column + ": '" + field +
                                     "' is not a number");
}

inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

inline history history_from_csv(std::istream& in, const std::string& file) {
  std::string line;
  std::string header = "epoch";
  for (const history_column& c : history_columns()) header += std::string(",") + c.name;
  const bool has_line = static_cast<bool>(std::getline(in, line));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (!has_line || line != header)
    throw history_file_error(file, "the first line is not the header '" + header + "'");
  history h;
  std::size_t row = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ++row;
    const std::vector<std::string> fields = split_csv_line(line);
    if (fields.size() != history_columns().size() + 1)
      throw history_file_error(file, "row " + std::to_string(row) + " has " + std::to_string(fields.size()) +
                                         " fields, the header " + std::to_string(history_columns().size() + 1));
    if (parse_number(fields[0], file, row, "epoch") != double(row))
      throw history_file_error(file, "row " + std::to_string(row) + " is epoch " + fields[0] + ", not " +
                                         std::to_string(row));
    for (std::size_t i = 0; i < history_columns().size(); ++i) {
      const history_column& c = history_columns()[i];
      const std::string& f = fields[i + 1];
      const double v = f.empty() && c.optional ? std::numeric_limits<double>::quiet_NaN()
                                               : parse_number(f, file, row, c.name);
      (h.*c.values).push_back(v);
    }
  }
  return h;
}

inline history history_from_json(std::istream& in, const std::string& file) {
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw history_file_error(file, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("epoch") || !j["epoch"].is_array())
    throw history_file_error(file, "not an object with an 'epoch' array");
  const std::size_t n = j["epoch"].size();
  history h;
  for (const history_column& c : history_columns()) {
    const auto it = j.find(c.name);
    if (it == j.end() || !it->is_array() || it->size() != n)
      throw history_file_error(file, std::string("'") + c.name + "' is not an array of " + std::to_string(n) +
                                         " values (one per epoch)");
    for (std::size_t e = 0; e < n; ++e) {
      const nlohmann::json& v = (*it)[e];
      if (v.is_number()) {
        (h.*c.values).push_back(v.get<double>());
      } else if (v.is_null() && c.optional) {
        (h.*c.values).push_back(std::numeric_limits<double>::quiet_NaN());
      } else {
        throw history_file_error(file, std::string("'") + c.name + "'[" + std::to_string(e) + "] = " + v.dump() +
                                           " is not a number");
      }
    }
  }
  return h;
}

}  // namespace detail

/// `h` as CSV text (the header comment's format). Throws std::invalid_argument when the
/// columns of `h` differ in length.
inline std::string history_csv(const history& h) {
  detail::check_history_columns(h, "gpukit::train::history_csv");
  std::string s = "epoch";
  for (const detail::history_column& c : detail::history_columns()) s += std::string(",") + c.name;
  s += "\n";
  for (std::size_t e = 0; e < h.epochs(); ++e) {
    s += std::to_string(e + 1);
    for (const detail::history_column& c : detail::history_columns()) {
      const double v = (h.*c.values)[e];
      s += ",";
      if (!std::isnan(v)) s += detail::round_trip(v);
    }
    s += "\n";
  }
  return s;
}

/// `h` as JSON text (the header comment's format; NaN is null).
inline std::string history_json(const history& h) {
  detail::check_history_columns(h, "gpukit::train::history_json");
  nlohmann::json j;
  std::vector<std::size_t> epoch(h.epochs());
  for (std::size_t e = 0; e < epoch.size(); ++e) epoch[e] = e + 1;
  j["epoch"] = epoch;
  for (const detail::history_column& c : detail::history_columns()) {
    nlohmann::json values = nlohmann::json::array();
    for (double v : h.*c.values) values.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
    j[c.name] = std::move(values);
  }
  return j.dump(1) + "\n";
}

/// Writes `h` to `path` (replacing it) as CSV or JSON, by the path's extension (.csv or
/// .json, any case). Throws std::invalid_argument for another extension or ragged columns
/// (nothing written), history_file_error when the file cannot be written.
inline void write_history(const history& h, const std::string& path) {
  constexpr const char* where = "gpukit::train::write_history";
  detail::check_history_columns(h, where);
  const std::string text = detail::history_is_json(path, where) ? history_json(h) : history_csv(h);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw history_file_error(path, "cannot create it", where);
  out << text;
  out.close();
  if (!out) throw history_file_error(path, "cannot write it", where);
}

/// Reads a file write_history() wrote (the format by the extension). Throws
/// history_file_error naming the file and what is wrong, std::invalid_argument for an
/// extension other than .csv or .json.
inline history read_history(const std::string& path) {
  const bool json = detail::history_is_json(path, "gpukit::train::read_history");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw history_file_error(path, "cannot open it");
  return json ? detail::history_from_json(in, path) : detail::history_from_csv(in, path);
}

}  // namespace gpukit::train
