// The Try it panel's "Ask about an image": an image and a question to a caption-task model
// through Ollama's POST /api/generate, its NDJSON stream shown as the tokens arrive. Stop
// aborts the fetch; the service then ends the sequence at its next step.

import { apiStream } from "./api.js";
import { $, setText } from "./dom.js";

let running = null; // the AbortController of the answer being streamed

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** The chosen model, or the configured default caption model (Ollama's API names one). */
function chosenModel() {
  const select = $("#askimage-model");
  if (select.value) return select.value;
  const options = [...select.options].slice(1);
  const fallback = options.find((o) => o.textContent.endsWith("(default)")) || options[0];
  if (!fallback) throw new Error("no caption model is configured");
  return fallback.value;
}

function finished(chunk) {
  const seconds = (chunk.total_duration || 0) / 1e9;
  const parts = [`${chunk.eval_count ?? 0} tokens`, chunk.done_reason, `${seconds.toFixed(2)} s`];
  setText("#askimage-meta", parts.filter(Boolean).join(" · "));
}

async function ask(button, stop) {
  const file = $("#askimage-file").files[0];
  if (!file) return;
  const answer = $("#askimage-answer");
  for (const id of ["#askimage-answer", "#askimage-meta", "#askimage-error"]) setText(id, "");
  running = new AbortController();
  button.disabled = true;
  stop.hidden = false;
  answer.dataset.state = "streaming";
  try {
    const body = {
      model: chosenModel(),
      prompt: $("#askimage-prompt").value,
      images: [await base64Of(file)],
      stream: true,
    };
    await apiStream("/api/generate", body, running.signal, (chunk) => {
      if (chunk.error) throw new Error(chunk.error);
      if (chunk.response) answer.append(chunk.response); // a text node: never markup
      if (chunk.done) finished(chunk);
    });
    answer.dataset.state = "done";
  } catch (error) {
    answer.dataset.state = running.signal.aborted ? "stopped" : "failed";
    if (!running.signal.aborted) setText("#askimage-error", error.message || String(error));
  } finally {
    running = null;
    button.disabled = false;
    stop.hidden = true;
  }
}

export function setUpAskImage() {
  const form = $("#askimage-form");
  const stop = $("#askimage-stop");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(form.querySelector("button[type=submit]"), stop);
  });
  stop.addEventListener("click", () => running?.abort());
}
