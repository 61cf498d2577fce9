// A config's keys declared once: a table of fields (dotted key, type, default, allowed values, one-line doc and the
// member it sets) from which a YAML section is read and checked, unknown keys are refused with the nearest declared
// one, the effective config is dumped and `cadenza config keys` lists every key. A key's section may be nested
// ("launch.slurm.job_name": the mapping `slurm:` inside `launch:`); ReadTree, CheckAll and EmitTree walk them all.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/config_keys.h"
#include "core/status.h"
#include "core/yaml_reader.h"

namespace cadenza {

// The bounds of a number (or of each number of a list); open ends exclude the bound.
struct NumberRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::string note;  // after the range in errors and key lists: "0 = all"

  bool Contains(double v) const { return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi); }
  bool Any() const { return lo == -std::numeric_limits<double>::infinity() && hi == std::numeric_limits<double>::infinity(); }
  // "1..256", ">= 0", "> 0", "0 < top_p <= 1", then " (note)"; `name` is the key's last part.
  std::string Text(const std::string& name) const;
};
inline NumberRange AtLeast(double lo, std::string note = "") { return {lo, std::numeric_limits<double>::infinity(), false, false, std::move(note)}; }
inline NumberRange Above(double lo, std::string note = "") { return {lo, std::numeric_limits<double>::infinity(), true, false, std::move(note)}; }
inline NumberRange Between(double lo, double hi, std::string note = "") { return {lo, hi, false, false, std::move(note)}; }
inline NumberRange Interval(double lo, double hi, bool lo_open, bool hi_open, std::string note = "") {
  return {lo, hi, lo_open, hi_open, std::move(note)};
}
// A number in messages: integers without a decimal point.
std::string NumberText(double v);
// A number in at most 15 significant digits: what a user wrote (0.1), not its nearest double (0.10000000000000001).
std::string ShortNumberText(double v);
// "a, b or c".
std::string ChoicesText(const std::vector<std::string>& choices, const char* last = " or ");

// One key of a config C. `section` is the dotted path of the mapping that holds it ("" at the top level).
template <typename C>
struct ConfigField {
  std::string section, name, type, allowed, doc;
  // Non-empty: the key applies only to configs for which `applies` holds (e.g. "transformer" keys); elsewhere it is
  // neither read, nor checked, nor dumped, and giving it is an error naming `applies_to`.
  std::string applies_to;
  std::function<bool(const C&)> applies;
  std::function<Status(const YamlReader&, const YAML::Node& section_node, const std::string& prefix, C*)> read;
  std::function<std::string(const C&)> check;  // "" or the error after the key ("expected >= 1")
  std::function<void(YAML::Emitter&, const C&)> emit;
  std::function<std::string(const C&)> show;  // the value in key lists when not as dumped (0.1, not 0.10000000000000001)

  std::string key() const { return section.empty() ? name : section + "." + name; }
  bool AppliesTo(const C& c) const { return !applies || applies(c); }
};

// The member a field sets, from member pointers: Member(&C::name) or Member(&C::train, &TrainConfig::steps).
template <typename C, typename T>
struct FieldMember {
  std::function<T&(C&)> get;
  T& operator()(C& c) const { return get(c); }
  const T& operator()(const C& c) const { return get(const_cast<C&>(c)); }
};
template <typename C, typename T>
FieldMember<C, T> Member(T C::*m) {
  return {[m](C& c) -> T& { return c.*m; }};
}
template <typename C, typename S, typename T>
FieldMember<C, T> Member(S C::*s, T S::*m) {
  return {[s, m](C& c) -> T& { return (c.*s).*m; }};
}

template <typename C>
class ConfigTable {
 public:
  // An integer or a number within `range`.
  template <typename T>
  ConfigTable& Number(const std::string& key, FieldMember<C, T> at, NumberRange range, std::string doc) {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
    ConfigField<C>& f = Add(key, std::is_integral_v<T> ? "integer" : "number", range.Any() ? "" : range.Text(NameOf(key)), doc);
    f.read = [at, name = f.name](const YamlReader& r, const YAML::Node& n, const std::string& prefix, C* c) {
      return r.Get(n, prefix, name.c_str(), &at(*c));
    };
    f.check = [at, range, name = f.name](const C& c) {
      return range.Contains(double(at(c))) ? std::string() : "expected " + range.Text(name);
    };
    f.emit = [at](YAML::Emitter& e, const C& c) { e << at(c); };
    if constexpr (std::is_floating_point_v<T>) f.show = [at](const C& c) { return ShortNumberText(at(c)); };
    return *this;
  }
  ConfigTable& Flag(const std::string& key, FieldMember<C, bool> at, std::string doc) {
    ConfigField<C>& f = Add(key, "true/false", "", doc);
    f.read = [at, name = f.name](const YamlReader& r, const YAML::Node& n, const std::string& prefix, C* c) {
      return r.Get(n, prefix, name.c_str(), &at(*c));
    };
    f.emit = [at](YAML::Emitter& e, const C& c) { e << at(c); };
    return *this;
  }
  // Any string; with `choices`, one of them ("" too when `empty_means` says what it means).
  ConfigTable& Text(const std::string& key, FieldMember<C, std::string> at, std::string doc,
                    std::vector<std::string> choices = {}, std::string empty_means = "") {
    std::string allowed = choices.empty() ? "" : ChoicesText(choices, " | ");
    if (!choices.empty() && !empty_means.empty()) allowed += " | \"\"";
    ConfigField<C>& f = Add(key, "string", allowed, doc);
    f.read = [at, name = f.name](const YamlReader& r, const YAML::Node& n, const std::string& prefix, C* c) {
      return r.Get(n, prefix, name.c_str(), &at(*c));
    };
    if (!choices.empty()) {
      f.check = [at, choices, empty_means](const C& c) {
        const std::string& v = at(c);
        if (v.empty() && !empty_means.empty()) return std::string();
        for (const std::string& ch : choices) {
          if (v == ch) return std::string();
        }
        return "expected " + ChoicesText(choices) + (empty_means.empty() ? "" : " (or empty: " + empty_means + ")") +
               ", found '" + v + "'";
      };
    }
    f.emit = [at](YAML::Emitter& e, const C& c) { e << at(c); };
    return *this;
  }
  // A duration written in seconds (2.5) and stored in milliseconds (2500, rounded to the nearest one) in an integer
  // member: `range` is in seconds, checked on the stored value; dumped and listed in seconds.
  template <typename T>
  ConfigTable& Seconds(const std::string& key, FieldMember<C, T> ms, NumberRange range, std::string doc) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    ConfigField<C>& f = Add(key, "seconds", range.Any() ? "" : range.Text(NameOf(key)), doc);
    f.read = [ms, range, name = f.name](const YamlReader& r, const YAML::Node& n, const std::string& prefix, C* c) {
      if (!n[name]) return Status::Ok();
      double s = 0;
      CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, name.c_str(), &s));
      // Beyond this the milliseconds would not fit the member (rounding it would be undefined).
      const double limit = std::min(1e15, double(std::numeric_limits<T>::max()) / 1000);
      if (!(std::fabs(s) <= limit)) {
        return r.Error(prefix + name, "expected " + (range.Any() ? "" : range.Text(name) + " and ") + "at most " +
                                          NumberText(limit) + " seconds, found " + ShortNumberText(s));
      }
      ms(*c) = static_cast<T>(std::llround(s * 1000));
      return Status::Ok();
    };
    f.check = [ms, range, name = f.name](const C& c) {
      return range.Contains(double(ms(c)) / 1000) ? std::string() : "expected " + range.Text(name);
    };
    f.emit = [ms](YAML::Emitter& e, const C& c) { e << double(ms(c)) / 1000; };
    f.show = [ms](const C& c) { return ShortNumberText(double(ms(c)) / 1000); };
    return *this;
  }
  // A list of numbers, each within `range`.
  template <typename T>
  ConfigTable& NumberList(const std::string& key, FieldMember<C, std::vector<T>> at, NumberRange range, std::string doc) {
    ConfigField<C>& f = Add(key, std::is_integral_v<T> ? "list of integers" : "list of numbers",
                            range.Any() ? "" : "each " + range.Text(NameOf(key)), doc);
    f.read = [at, name = f.name](const YamlReader& r, const YAML::Node& n, const std::string& prefix, C* c) {
      return r.GetList(n, prefix, name.c_str(), &at(*c));
    };
    f.check = [at, range, name = f.name](const C& c) {
      for (T v : at(c)) {
        if (!range.Contains(double(v))) return "expected " + range.Text(name) + ", found " + NumberText(double(v));
      }
      return std::string();
    };
    f.emit = [at](YAML::Emitter& e, const C& c) { e << YAML::Flow << at(c); };
    return *this;
  }
  // A list of strings; with `choices`, each one of them.
  ConfigTable& TextList(const std::string& key, FieldMember<C, std::vector<std::string>> at, std::string doc,
                        std::vector<std::string> choices = {}) {
    ConfigField<C>& f = Add(key, "list of strings", choices.empty() ? "" : "each " + ChoicesText(choices, " | "), doc);
    f.read = [at, name = f.name](const YamlReader& r, const YAML::Node& n, const std::string& prefix, C* c) {
      return r.GetList(n, prefix, name.c_str(), &at(*c));
    };
    if (!choices.empty()) {
      f.check = [at, choices](const C& c) {
        for (const std::string& v : at(c)) {
          if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
            return "expected " + ChoicesText(choices) + ", found '" + v + "'";
          }
        }
        return std::string();
      };
    }
    f.emit = [at](YAML::Emitter& e, const C& c) { e << YAML::Flow << at(c); };
    return *this;
  }
  // The last field added applies only where `applies` holds ("transformer" keys of a model).
  ConfigTable& OnlyFor(std::string what, std::function<bool(const C&)> applies) {
    fields_.back().applies_to = std::move(what);
    fields_.back().applies = std::move(applies);
    return *this;
  }

  const std::vector<ConfigField<C>>& fields() const { return fields_; }

  // The names of the keys of `section`.
  std::set<std::string> Names(const std::string& section) const {
    std::set<std::string> names;
    for (const auto& f : fields_) {
      if (f.section == section) names.insert(f.name);
    }
    return names;
  }

  // Reads the mapping `node` (at dotted `path` in the file; "" at the top) into *c as the keys of `section`: a key
  // the section does not declare (nor `extra`, read elsewhere) is refused with the nearest declared one, a value of
  // the wrong type is named. Values are checked by Check, after the whole config is read.
  Status Read(const std::string& section, const YamlReader& r, const YAML::Node& node, const std::string& path, C* c,
              const std::set<std::string>& extra = {}) const {
    std::set<std::string> allowed = Names(section);
    allowed.insert(extra.begin(), extra.end());
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(node, path, allowed));
    const std::string prefix = path.empty() ? "" : path + ".";
    for (const auto& f : fields_) {
      if (f.section == section) CADENZA_RETURN_IF_ERROR(f.read(r, node, prefix, c));
    }
    return Status::Ok();
  }
  // The sections directly inside `section` ("launch" holds "launch.slurm"; "" holds "launch"), by their names
  // there ("slurm"), in the order of their first declared key.
  std::vector<std::string> Subsections(const std::string& section) const {
    std::vector<std::string> subs;
    for (const auto& f : fields_) {
      const std::string sub = ChildOf(section, f.section);
      if (!sub.empty() && std::find(subs.begin(), subs.end(), sub) == subs.end()) subs.push_back(sub);
    }
    return subs;
  }
  // Read for `section` and every section nested in it, each from the mapping of its name ("launch: {slurm: {...}}"):
  // a config whose sections are all in the table. `node` is the mapping at dotted path `section`.
  Status ReadTree(const std::string& section, const YamlReader& r, const YAML::Node& node, C* c) const {
    const std::vector<std::string> subs = Subsections(section);
    CADENZA_RETURN_IF_ERROR(Read(section, r, node, section, c, std::set<std::string>(subs.begin(), subs.end())));
    for (const std::string& sub : subs) {
      if (const YAML::Node child = node[sub]) CADENZA_RETURN_IF_ERROR(ReadTree(Join(section, sub), r, child, c));
    }
    return Status::Ok();
  }
  // Check of every section, in declaration order, as `err(dotted key, what)`.
  Status CheckAll(const C& c, const std::function<Status(const std::string&, const std::string&)>& err) const {
    for (const auto& f : fields_) {
      if (!f.check || !f.AppliesTo(c)) continue;
      if (std::string what = f.check(c); !what.empty()) return err(f.key(), what);
    }
    return Status::Ok();
  }
  // Emit of `section` with its nested sections as mappings, in declaration order (a section where its first key is).
  void EmitTree(const std::string& section, const C& c, YAML::Emitter& e) const {
    std::set<std::string> done;
    for (const auto& f : fields_) {
      if (f.section == section) {
        if (!f.AppliesTo(c)) continue;
        e << YAML::Key << f.name << YAML::Value;
        f.emit(e, c);
      } else if (const std::string sub = ChildOf(section, f.section); !sub.empty() && done.insert(sub).second) {
        e << YAML::Key << sub << YAML::Value << YAML::BeginMap;
        EmitTree(Join(section, sub), c, e);
        e << YAML::EndMap;
      }
    }
  }
  // A key of `node` that exists but does not apply to *c (read above): `err(name, what)`.
  Status RefuseInapplicable(const std::string& section, const YAML::Node& node, const C& c,
                            const std::function<Status(const std::string&, const std::string&)>& err,
                            const std::string& why) const {
    for (const auto& f : fields_) {
      if (f.section == section && !f.AppliesTo(c) && node[f.name]) {
        return err(f.name, "a " + f.applies_to + " key, but " + why);
      }
    }
    return Status::Ok();
  }
  // The first value of `section` out of its range or choices, as `err(key within the section, what)`.
  Status Check(const std::string& section, const C& c,
               const std::function<Status(const std::string&, const std::string&)>& err) const {
    for (const auto& f : fields_) {
      if (f.section != section || !f.check || !f.AppliesTo(c)) continue;
      if (std::string what = f.check(c); !what.empty()) return err(f.name, what);
    }
    return Status::Ok();
  }
  // The keys of `section` that apply to `c` and their values, into an open mapping of `e`.
  void Emit(const std::string& section, const C& c, YAML::Emitter& e) const {
    for (const auto& f : fields_) {
      if (f.section != section || !f.AppliesTo(c)) continue;
      e << YAML::Key << f.name << YAML::Value;
      f.emit(e, c);
    }
  }
  // Every key with its value in `defaults` as the default; `prefix` goes before each key ("model.").
  std::vector<ConfigKeyDoc> Docs(const C& defaults, const std::string& prefix = "") const {
    std::vector<ConfigKeyDoc> docs;
    for (const auto& f : fields_) {
      YAML::Emitter e;
      f.emit(e, defaults);
      const std::string value = f.show ? f.show(defaults) : e.c_str();
      std::string doc = f.doc;
      if (!f.applies_to.empty()) doc += " (" + f.applies_to + " only)";
      docs.push_back({prefix + f.key(), f.type, value, f.allowed, doc});
    }
    return docs;
  }

 private:
  static std::string NameOf(const std::string& key) {
    const size_t dot = key.rfind('.');
    return dot == std::string::npos ? key : key.substr(dot + 1);
  }
  static std::string Join(const std::string& section, const std::string& name) { return section.empty() ? name : section + "." + name; }
  // The section inside `parent` that holds `section` or is it, by its last part ("launch", "launch.slurm" ->
  // "slurm"); "" when `section` is not strictly inside `parent`.
  static std::string ChildOf(const std::string& parent, const std::string& section) {
    if (section.empty() || section == parent) return "";
    if (!parent.empty() && section.compare(0, parent.size() + 1, parent + ".") != 0) return "";
    const std::string rest = parent.empty() ? section : section.substr(parent.size() + 1);
    return rest.substr(0, rest.find('.'));
  }
  ConfigField<C>& Add(const std::string& key, std::string type, std::string allowed, std::string doc) {
    ConfigField<C> f;
    const size_t dot = key.rfind('.');
    f.section = dot == std::string::npos ? "" : key.substr(0, dot);
    f.name = NameOf(key);
    f.type = std::move(type);
    f.allowed = std::move(allowed);
    f.doc = std::move(doc);
    fields_.push_back(std::move(f));
    return fields_.back();
  }
  std::vector<ConfigField<C>> fields_;
};

}  // namespace cadenza
