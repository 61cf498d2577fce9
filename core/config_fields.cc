// The texts of config field tables (core/config_fields.h): ranges, choices and the key list.
#include "core/config_fields.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace cadenza {

std::string NumberText(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string ShortNumberText(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::string ChoicesText(const std::vector<std::string>& choices, const char* last) {
  const std::string between = std::string(last) == " | " ? " | " : ", ";  // "a | b | c" or "a, b or c"
  std::string text;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) text += i + 1 == choices.size() ? std::string(last) : between;
    text += choices[i];
  }
  return text;
}

std::string NumberRange::Text(const std::string& name) const {
  const bool has_lo = lo != -std::numeric_limits<double>::infinity();
  const bool has_hi = hi != std::numeric_limits<double>::infinity();
  std::string text;
  if (has_lo && has_hi && !lo_open && !hi_open) {
    text = NumberText(lo) + ".." + NumberText(hi);
  } else if (has_lo && has_hi) {
    text = NumberText(lo) + (lo_open ? " < " : " <= ") + name + (hi_open ? " < " : " <= ") + NumberText(hi);
  } else if (has_lo) {
    text = (lo_open ? "> " : ">= ") + NumberText(lo);
  } else if (has_hi) {
    text = (hi_open ? "< " : "<= ") + NumberText(hi);
  }
  return note.empty() ? text : text + " (" + note + ")";
}

std::string FormatConfigKeys(const std::vector<ConfigKeyDoc>& keys) {
  size_t key_width = 0, type_width = 0;
  for (const ConfigKeyDoc& k : keys) {
    key_width = std::max(key_width, k.key.size());
    type_width = std::max(type_width, k.type.size());
  }
  std::string out;
  for (const ConfigKeyDoc& k : keys) {
    std::string line = k.key + std::string(key_width + 2 - k.key.size(), ' ') + k.type +
                       std::string(type_width + 2 - k.type.size(), ' ') + "default " + k.default_value;
    if (!k.allowed.empty()) line += "; " + k.allowed;
    out += line + "\n    " + k.doc + "\n";
  }
  return out;
}

}  // namespace cadenza
