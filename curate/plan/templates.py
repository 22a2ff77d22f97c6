"""Instruction texts of the paper (appendix D.3, tables A.4-A.6, table A.1) with stable ids.

Texts are verbatim from the paper, typos included. Ids are ``<task>.<kind><index>``
(``oct.q07``, ``vlt.t03``, ``ict.q12``, ``ict_multi.s2``); the index is the
position in the paper's list, so an id names the same text forever.

Prompt assembly (what the model sees, one text part after the image parts):

    <system prompt with names, up to {Question}> [<reasoning>] <question> [<answer hint>]

* The system prompt of the task is the paper's; its ``{Question}`` slot gets the
  question. ``<name>`` / ``<name1>, <name2>, and <name3>`` are replaced by the
  example's names (two names as ``<a>, <b>``, three as ``<a>, <b>, and <c>``, as
  the paper writes them).
* ``reasoning`` (table A.1) is put directly before the question, as appendix B.4
  says ("appended directly before each captioning query"); it is used for every
  task's query, since the ablation trains the whole mixture with the template.
* Answer hints are the sentences the official RePIC trainer appends to each
  problem when it loads its JSON (``grpo_multitask_multi_img_no_format.py``): a
  fixed one for OCT and VLT, and for ICT one of two hints with probability 1/5
  each, none otherwise. They are part of the stored prompt because this
  project trains on the stored prompt as is; ``problem`` (the text without the
  hint) is kept in ``ExamplePlan.meta`` for the official JSON export.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from curate.plan.names import derive_seed

OCT_QUESTIONS: tuple[str, ...] = (
    "Please verify whether the objects in these pictures are the same. An object is considered the same if its consistency is maintained despite variations in lighting or pose.",
    "Is <name> visible in this picture?",
    "Is <name> in this image?",
    "Do you see <name> in the photo?",
    "Is <name> present in this photograph?",
    "Can you identify if <name> is captured in this picture?",
    "Is <name> depicted in this image?",
    "Does the picture feature <name>?",
    "Can you confirm if <name> appears in this photo?",
    "Is <name> included in this shot?",
    "Is <name> shown in this image?",
    "Can you tell if <name> is part of this photograph?",
    "Is there any sign of <name> in this picture?",
    "Can you detect <name> in the photo?",
    "Is <name> captured in this image?",
    "Do you recognize <name> in this picture?",
)

OCT_SYSTEM = (
    "As an evaluation expert, your task is to verify whether the object identified as <name> in the first image "
    "is also present in the second image. Answer with yes or no. {Question}"
)

ICT_SINGLE_SYSTEM = (
    "You are a captioning expert. Your task is to generate an accurate caption for the second image while "
    "referencing the first image. Both images contain the same object. The object in the first image is named "
    "<name>. {Question}"
)

# The multi-ICT system prompt and its three variants; "<names>" stands for the joined names.
ICT_MULTI_SYSTEMS: tuple[str, ...] = (
    "You are a captioning expert. Your task is to generate an accurate caption for the last query image while "
    "referencing the given reference images. The reference images each contain an object, named respectively as "
    "<names>. {Question}",
    "These are additional information about the given images except the last image: <names>. {Question}",
    "Each object in the images not including the last image has a name: <names>. {Question}",
    "Below is additional information about the object all images except the last one: <names>. {Question}",
)

VLT_TEMPLATES: tuple[str, ...] = (
    "Please provide the bounding box coordinate of the region this sentence describes: <name>.",
    "Give <name>'s bounding box in the image.",
    "Describe <name>'s position in the image.",
    "Please provide the coordinates of the bounding box for <name> in the given image.",
    "Specify the rectangular boundaries of <name> in the image.",
    "Give <name>'s position in the following image.",
    "Please provide <name>'s bounding coordinates in the image.",
    "Indicate the bounding box for <name> in the image.",
    "Show the bounding box for <name> in the picture.",
    "Specify <name>'s bounding box in the photograph.",
    "Mark <name>'s bounding box within the image.",
)

# Table A.6. True = a "detailed" (descriptive) prompt in the sense of section 3.2 ("descriptive
# prompts (e.g., 'describe this image in detail.') that elicit richer language generation"). Our
# classification (a stated choice): prompts that ask to *describe*, for a *description*, for
# *detail* or for a *rich interpretation* are detailed; prompts that ask for a caption or a
# summary are simple. recipe.templates.detailed_prompts=false keeps only the simple ones.
ICT_QUESTIONS: tuple[tuple[str, bool], ...] = (
    ("Give a caption of the image.", False),
    ("Give a personalized caption of this image.", False),
    ("Provide a general caption of the image.", False),
    ("Summarize the visual content of the image.", False),
    ("Create a detail caption of the image.", True),
    ("Offer a rich and clear interpretation of the image.", True),
    ("Describe the image in detail.", True),
    ("Render a summary of the photo.", False),
    ("Provide a caption of the given image.", False),
    ("Can you provide a personalized caption of this photo?", False),
    ("Could you describe this image faithfully?", True),
    ("Generate a detailed and accurate description of the image.", True),
    ("Write a caption that reflects the contents and context of the image.", False),
    ("Compose a meaningful caption that truly represents the image.", False),
    ("Describe the image in a personalized and context-aware manner.", True),
    ("Provide a natural-sounding caption that accurately conveys what is in the image.", False),
    ("Craft a caption that authentically describes the scene in the image.", False),
    ("Create a caption that captures the essence of the image.", False),
    ("Write a caption that reflects what's visually happening in the photo.", False),
    ("Generate a human-like description that accurately represents the image.", True),
    ("Describe this image as if you were explaining it to a friend.", True),
    ("Produce a relevant and truthful caption based on the image.", False),
    ("Give a caption that matches the visual elements in the image.", False),
    ("Summarize the visual content of this image in a natural way.", False),
    ("Write an image-grounded caption that remains faithful to the content.", False),
)

# Table A.1.
REASONING: dict[str, str] = {
    "think": "First output the thinking process in <think> </think> tags and then output the final answer in <answer> </answer> tags.",
    "observe": "First, observe carefully and enclose the observation process in <observe> </observe> tags and then output the final answer in <answer> </answer> tags.",
}

# Official trainer's answer hints (see module docstring).
OCT_HINT = "The final answer must be either 'yes' or 'no' with no additional output."
VLT_HINT = "For bounding box coordinates, return the final answer in JSON format."
ICT_HINTS: tuple[str, ...] = (
    "Output the final answer including its name.",
    "Output the final answer without duplicating the given information.",
)

# accu_reward_method of the official RePIC / VLM-R1 JSON, per task.
REWARD_METHOD = {"oct": "yes_no", "vlt": "iou", "ict_single": "yes_no_name", "ict_multi": "yes_no_name_multi"}


@dataclass(frozen=True)
class Rendered:
    text: str  # the full text part
    problem: str  # the text without the answer hint (official JSON "problem")
    template: str  # template id, e.g. "oct.q07+think"


def join_names(names: list[str]) -> str:
    if len(names) <= 2:
        return ", ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]


def ict_question_ids(detailed: bool) -> list[int]:
    """Indices of the table A.6 questions in use."""
    return [i for i, (_, is_detailed) in enumerate(ICT_QUESTIONS) if detailed or not is_detailed]


def _assemble(system: str, question: str, reasoning: str, hint: str | None) -> tuple[str, str]:
    _suffix(reasoning)  # validates the reasoning switch
    head, _, tail = system.partition("{Question}")
    parts = [head.rstrip()]
    if reasoning != "none":
        parts.append(REASONING[reasoning])
    parts.append(question)
    problem = " ".join(p for p in parts if p) + tail
    text = problem if hint is None else f"{problem} {hint}"
    return text, problem


def _suffix(reasoning: str) -> str:
    if reasoning not in ("none", *REASONING):
        raise ValueError(f"unknown reasoning template {reasoning!r}")
    return "" if reasoning == "none" else f"+{reasoning}"


def render_oct(name: str, rng: random.Random, reasoning: str = "none") -> Rendered:
    q = rng.randrange(len(OCT_QUESTIONS))
    system = OCT_SYSTEM.replace("<name>", name)
    text, problem = _assemble(system, OCT_QUESTIONS[q].replace("<name>", name), reasoning, OCT_HINT)
    return Rendered(text, problem, f"oct.q{q:02d}{_suffix(reasoning)}")


def render_vlt(expression: str, rng: random.Random, reasoning: str = "none") -> Rendered:
    t = rng.randrange(len(VLT_TEMPLATES))
    question = VLT_TEMPLATES[t].replace("<name>", expression.strip())
    text, problem = _assemble("{Question}", question, reasoning, VLT_HINT)
    return Rendered(text, problem, f"vlt.t{t:02d}{_suffix(reasoning)}")


def _ict_question_and_hint(rng: random.Random, detailed: bool) -> tuple[int, int | None]:
    q = rng.choice(ict_question_ids(detailed))
    roll = rng.randrange(5)  # the official trainer's randint(0, 4)
    return q, (roll if roll < len(ICT_HINTS) else None)


def _hint_id(h: int | None) -> str:
    return "" if h is None else f".h{h}"


def render_ict_single(name: str, rng: random.Random, *, detailed: bool = True, reasoning: str = "none") -> Rendered:
    q, h = _ict_question_and_hint(rng, detailed)
    system = ICT_SINGLE_SYSTEM.replace("<name>", name)
    hint = None if h is None else ICT_HINTS[h]
    text, problem = _assemble(system, ICT_QUESTIONS[q][0], reasoning, hint)
    return Rendered(text, problem, f"ict.q{q:02d}{_hint_id(h)}{_suffix(reasoning)}")


def render_ict_multi(
    names: list[str], rng: random.Random, *, detailed: bool = True, reasoning: str = "none"
) -> Rendered:
    s = rng.randrange(len(ICT_MULTI_SYSTEMS))
    q, h = _ict_question_and_hint(rng, detailed)
    system = ICT_MULTI_SYSTEMS[s].replace("<names>", join_names(names))
    hint = None if h is None else ICT_HINTS[h]
    text, problem = _assemble(system, ICT_QUESTIONS[q][0], reasoning, hint)
    return Rendered(text, problem, f"ict_multi.s{s}.q{q:02d}{_hint_id(h)}{_suffix(reasoning)}")


def user_messages(n_images: int, text: str) -> list[dict]:
    """TRL conversational prompt: one user turn, image placeholders first (query last), then the text."""
    content: list[dict] = [{"type": "image", "text": None} for _ in range(n_images)]
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def template_rng(seed: int, key: tuple) -> random.Random:
    """The random source that picks one example's template: a function of the recipe seed and the example's key."""
    return random.Random(derive_seed(seed, "template", *key))
