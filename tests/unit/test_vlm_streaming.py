"""Streaming and cancellation inside one batched generate, on the tiny random LLaVA: a row whose
client is gone stops at its next step while the others go on, unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from frontend.tasks.caption import CaptionTask, Prompt, Turn
from tools.build_test_models import TINY_LLAVA, build_test_models


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> CaptionTask:
    data = tmp_path_factory.mktemp("data")
    build_test_models(data, only="llava")
    with pytest.MonkeyPatch.context() as patch:  # local_snapshot reads HF_HOME at call time
        patch.setenv("HF_HOME", str(data / "models"))
        return CaptionTask(TINY_LLAVA, max_new_tokens=12)


def prompt(seed: int, question: str) -> Prompt:
    image = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return Prompt([Turn("user", question, 1)], [image])


def test_a_cancelled_row_stops_and_the_others_answer_as_alone(task: CaptionTask) -> None:
    prompts = [prompt(1, "What is this?"), prompt(2, "Describe the colours.")]
    alone = [task.answer([p])[0] for p in prompts]
    assert all(a.completion_tokens > 3 for a in alone)  # long enough to be cut
    checks = {0: 0, 1: 0}
    deltas: dict[int, list[str]] = {0: [], 1: []}

    def cancelled(row: int) -> bool:  # the first client leaves after its third token
        checks[row] += 1
        return row == 0 and checks[row] >= 3

    first, second = task.answer(
        prompts, on_text=lambda r, d: deltas[r].append(d), cancelled=cancelled
    )
    assert first.done_reason == "cancelled" and first.completion_tokens == 3
    assert alone[0].text.startswith("".join(deltas[0]))  # what it streamed before it left
    assert (second.text, second.completion_tokens) == (alone[1].text, alone[1].completion_tokens)
    assert second.done_reason == alone[1].done_reason
    streamed = "".join(deltas[1])
    assert streamed and second.text.startswith(streamed) and second.sent == streamed
