// The Try it panel's rerank form: one query against a few documents, best first.

import { api } from "./api.js";
import { $, busy, el, setText } from "./dom.js";

export function setUpRerank() {
  const form = $("#rerank-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    $("#rerank-result").replaceChildren();
    busy(form.querySelector("button[type=submit]"), $("#rerank-error"), async () => {
      const documents = $("#rerank-documents").value.split("\n").map((d) => d.trim()).filter(Boolean);
      const body = { query: $("#rerank-query").value, documents, return_documents: true };
      const model = $("#rerank-model").value;
      const result = await api("/api/rerank", { method: "POST", json: model ? { ...body, model } : body });
      $("#rerank-result").replaceChildren(
        ...result.results.map((r) =>
          el("li", {}, el("strong", {}, r.relevance_score.toFixed(4)), ` ${r.document}`),
        ),
      );
      setText("#rerank-error", "");
    });
  });
}
