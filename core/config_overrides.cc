// Dotted-key overrides applied to an experiment's YAML before it is parsed and validated.
#include "core/config_overrides.h"

#include "core/yaml_path.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <sstream>

namespace cadenza {

StatusOr<std::string> ApplyOverrides(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  if (overrides.empty()) return yaml_text;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("experiment YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return InvalidArgument("experiment YAML: expected a mapping");
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    const std::string key = o.substr(0, eq);
    bool ok = eq != std::string::npos && eq > 0 && key.front() != '.' && key.back() != '.' && key.find("..") == std::string::npos;
    for (char c : key) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.');
    if (!ok) return InvalidArgument("override '" + o + "': expected key=value with a dotted experiment key, e.g. train.steps=300");
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      return InvalidArgument("override " + key + ": the value is not YAML: " + e.msg);
    }
    if (!value.IsDefined() || value.IsNull()) return InvalidArgument("override " + key + ": expected a value after '='");
    if (Status set = SetYamlPath(root, key, value); !set.ok()) {
      return InvalidArgument("override " + key + ": " + set.message() + (key.rfind("model.", 0) == 0 ? " (the model file must be inlined first)" : ""));
    }
  }
  std::ostringstream out;
  out << root;
  return out.str();
}

Status SetYamlPath(YAML::Node root, const std::string& dotted, const YAML::Node& value) {
  YAML::Node n = root;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string part = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      n[part] = value;
      return Status::Ok();
    }
    YAML::Node child = n[part];
    if (child && !child.IsMap()) return InvalidArgument(dotted.substr(0, dot) + " is not a mapping");
    if (!child) {
      n[part] = YAML::Node(YAML::NodeType::Map);
      child = n[part];
    }
    n.reset(child);  // rebind (assignment would copy the child into n)
    start = dot + 1;
  }
}

}  // namespace cadenza
