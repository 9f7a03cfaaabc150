// The Try it panel's image search: a few images and a text query through one image_embedding
// model (POST /api/embed with texts and images), ranked by cosine of the text's vector to each
// image's. The images' vectors are kept while the files and model stay the same, so a new
// query sends only its text.

import { api } from "./api.js";
import { $, busy, el, setText } from "./dom.js";

const PER_REQUEST = 16; // limits.max_images_per_request's default
let indexed = { key: null, vectors: [] };
let thumbnails = [];

// Also the Try it panel's similarity of two embedded texts (tryit.js).
export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i += 1) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

function withModel(body) {
  const model = $("#imagesearch-model").value;
  return model ? { ...body, model } : body;
}

async function imageVectors(files) {
  const key = [$("#imagesearch-model").value, ...files.map((f) => `${f.name}:${f.size}:${f.lastModified}`)].join("|");
  if (indexed.key === key) return indexed.vectors;
  const vectors = [];
  for (let start = 0; start < files.length; start += PER_REQUEST) {
    const images = await Promise.all(files.slice(start, start + PER_REQUEST).map(dataUrl));
    const result = await api("/api/embed", { method: "POST", json: withModel({ images }) });
    vectors.push(...result.embeddings);
  }
  indexed = { key, vectors };
  return vectors;
}

function showThumbnails(files) {
  for (const url of thumbnails) URL.revokeObjectURL(url);
  thumbnails = files.map((file) => URL.createObjectURL(file));
  indexed = { key: null, vectors: [] };
}

export function setUpImageSearch() {
  const form = $("#imagesearch-form");
  const input = $("#imagesearch-files");
  input.addEventListener("change", () => {
    showThumbnails([...input.files]);
    $("#imagesearch-result").replaceChildren();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = [...input.files];
    if (!files.length) return;
    $("#imagesearch-result").replaceChildren();
    busy(form.querySelector("button[type=submit]"), $("#imagesearch-error"), async () => {
      const images = await imageVectors(files);
      const query = await api("/api/embed", {
        method: "POST",
        json: withModel({ texts: [$("#imagesearch-query").value] }),
      });
      const [text] = query.embeddings;
      const ranked = files
        .map((file, index) => ({ file, index, score: cosine(text, images[index]) }))
        .sort((a, b) => b.score - a.score);
      $("#imagesearch-result").replaceChildren(
        ...ranked.map((r) =>
          el(
            "li",
            { dataset: { name: r.file.name, score: String(r.score) } },
            el("img", { src: thumbnails[r.index], alt: r.file.name, className: "thumb" }),
            el("strong", { className: "score" }, r.score.toFixed(4)),
            ` ${r.file.name}`,
          ),
        ),
      );
      setText("#imagesearch-summary", `${files.length} images · ${query.model_used} · ${query.dimensions} dimensions`);
    });
  });
}
