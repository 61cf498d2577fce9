// The report/live page: the embedded template (web/page.html) filled with the chart library, script, style and data.
#include "core/report/page.h"

#include <string_view>

namespace cadenza {
namespace web {
extern const std::string_view kUplotJs, kUplotCss, kPageHtml, kPageJs, kPageCss;  // web_assets.cc (generated)
}  // namespace web

nlohmann::json FigureJson(const Figure& f) {
  nlohmann::json series = nlohmann::json::array();
  for (const Series& s : f.series) {
    series.push_back({{"label", s.label}, {"x", s.x}, {"y", s.y}, {"lo", s.lo}, {"hi", s.hi}});
  }
  return {{"id", f.id},   {"title", f.title},   {"xlabel", f.xlabel},  {"ylabel", f.ylabel},
          {"logx", f.logx}, {"series", series}, {"missing", f.missing}};
}

nlohmann::json ReportData(const nlohmann::json& cells, const std::vector<Figure>& figures, const ReportContext& context,
                          bool files) {
  nlohmann::json facts = nlohmann::json::array();
  for (const auto& [k, v] : context.facts) facts.push_back({k, v});
  nlohmann::json figs = nlohmann::json::array();
  for (const Figure& f : figures) figs.push_back(FigureJson(f));
  nlohmann::json images = nlohmann::json::array();
  for (const ReportImage& i : context.images) images.push_back({{"title", i.title}, {"file", i.file}, {"caption", i.caption}});
  return {{"title", context.title}, {"facts", facts}, {"notes", context.notes},
          {"cells", cells.is_array() ? cells : nlohmann::json::array()}, {"figures", figs}, {"images", images}, {"files", files}};
}

std::string PageHtml(const nlohmann::json& data) {
  // Inside <script type="application/json">, "</" must not appear: JSON allows "<\/" for it.
  std::string data_text;
  if (!data.is_null()) {
    const std::string dumped = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    data_text.reserve(dumped.size());
    for (size_t i = 0; i < dumped.size(); ++i) {
      data_text += dumped[i];
      if (dumped[i] == '<' && i + 1 < dumped.size() && dumped[i + 1] == '/') data_text += '\\';
    }
  }
  const std::pair<std::string_view, std::string_view> fills[] = {
      {"@@UPLOT_CSS@@", web::kUplotCss}, {"@@PAGE_CSS@@", web::kPageCss}, {"@@LIVE@@", data.is_null() ? "1" : "0"},
      {"@@DATA@@", data_text},           {"@@UPLOT_JS@@", web::kUplotJs}, {"@@PAGE_JS@@", web::kPageJs}};
  // One pass over the template: a filled-in text is never searched for markers again.
  std::string out;
  const std::string_view t = web::kPageHtml;
  size_t pos = 0;
  while (pos < t.size()) {
    const size_t at = t.find("@@", pos);
    if (at == std::string_view::npos) break;
    bool filled = false;
    for (const auto& [marker, text] : fills) {
      if (t.compare(at, marker.size(), marker) == 0) {
        out.append(t.substr(pos, at - pos));
        out.append(text);
        pos = at + marker.size();
        filled = true;
        break;
      }
    }
    if (!filled) {
      out.append(t.substr(pos, at + 2 - pos));
      pos = at + 2;
    }
  }
  out.append(t.substr(pos));
  return out;
}

}  // namespace cadenza
