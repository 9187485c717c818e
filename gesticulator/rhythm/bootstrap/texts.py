"""Talk-like English for the bootstrap corpus, written here (Apache-2.0 like the rest of the code).

`make_talk(rng, target_words)` strings together *moves* -- an opening, a numbered list, a short
story, an explanation, some numbers, questions with answers, a contrast, a hand-written
paragraph, a closing -- over one of the topics below. Sentences are filled from templates with
slots (``{name}``, ``{percent}``, ``{weekday}``...) and from each topic's own phrases, so a few
hours of speech rarely repeat a sentence while staying the kind of English a presenter says:
lists ("first... second..."), numbers, questions, stories and emphasis.

The topics (advice, facts, story events, lessons, questions) and the hand-written paragraphs are
data in ``talks.yaml`` beside this file. Everything is drawn from the `numpy.random.Generator` passed in: the same seed gives the same
talk. Nothing here comes from an outside text source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import yaml

# -- general pools ---------------------------------------------------------------------------------
NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Frank", "Grace", "Hassan", "Irene", "Jamal", "Kate", "Leo",
    "Maria", "Nick", "Olivia", "Paul", "Rosa", "Sam", "Tina", "Victor", "Wendy", "Yusuf", "Zoe", "Omar",
    "Lucy", "Martin", "Priya", "Tom", "Helen", "Marco",
)  # fmt: skip
RELATIVES = ("my sister", "my brother", "my uncle", "my aunt", "my neighbour", "my grandmother",
             "my grandfather", "a friend of mine", "my cousin", "an old colleague of mine", "my daughter",
             "my son", "my best friend", "my old teacher")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
CITIES = ("Lisbon", "Chicago", "Nairobi", "Oslo", "Toronto", "Madrid", "Melbourne", "Denver", "Glasgow",
          "Seoul", "Lyon", "Boston", "Dublin", "Vienna", "Austin", "Manchester")  # fmt: skip
TIME_AGO = ("a few years ago", "last summer", "two years ago", "a long time ago", "last winter",
            "about ten years ago", "not so long ago", "when I was a student", "last spring", "a while back")  # fmt: skip
COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
BIG_NUMBERS = ("one thousand", "two thousand", "fifteen hundred", "three thousand", "five hundred")
ORDINALS = (
    ("First,", "First of all,", "The first thing is this:", "Number one:"),
    ("Second,", "The second thing is this:", "Next,", "Number two:"),
    ("Third,", "The third thing is this:", "And third,", "Number three:"),
    ("And finally,", "Last but not least,", "And the fourth one:", "Finally,"),
)
CONNECTORS = ("So,", "Now,", "Well,", "Okay, so", "And", "But", "Actually,", "Honestly,", "You see,", "Look,",
              "In fact,", "Of course,", "Basically,", "Anyway,")  # fmt: skip
AFFIRM = ("That is the key.", "It really is that simple.", "Think about that for a second.",
          "And that changes everything.", "That surprised me.", "It sounds obvious, but it is not.",
          "Trust me on this one.", "This is the important part.", "Keep that in mind.", "Let that sink in.",
          "I find that amazing.", "Nobody talks about this.", "That was a big moment for me.",
          "It makes a huge difference.", "Write that down.", "And it works.")  # fmt: skip

# -- generic moves (topic phrases go into the slots) -------------------------------------------------
OPENINGS = (
    "Good morning, everyone.", "Hello, and welcome.", "Hi everybody, and thank you for coming.",
    "Okay, let's get started.", "Good afternoon.", "Hello again, it is good to see you all.",
    "Welcome back.", "Alright, can everyone hear me?", "Thanks for having me today.", "Hi, my name is {name}.",
)  # fmt: skip
INTROS = (
    "Today I want to talk about {topic}.", "This talk is about {topic}, and why it matters more than you think.",
    "I have been thinking about {topic} for a long time.", "Let's talk about {topic}.",
    "My subject today is {topic}.", "In the next few minutes, I will tell you what I learned about {topic}.",
    "I want to share a few thoughts on {topic}.", "We are going to look at {topic} from a new angle.",
    "Some of you asked me about {topic}, so here we go.",
)  # fmt: skip
LIST_INTROS = (
    "There are {n} things I want you to remember.", "Here are {n} simple tips.",
    "Let me give you {n} pieces of advice.", "I learned {n} lessons the hard way.",
    "So what should you do? I have {n} suggestions.", "There are {n} steps, and they are all easy.",
    "If you remember only {n} things from today, make it these.",
)  # fmt: skip
LIST_ITEMS = ("{point}.", "{point}.", "try to {point}.", "you should {point}.", "remember to {point}.",
              "it helps to {point}.", "{point}, every single time.")  # fmt: skip
STORY_INTROS = ("Let me tell you a short story.", "Here is a story.", "I want to tell you about something that happened to me.",
                "This reminds me of a story.", "Let me give you an example from my own life.")  # fmt: skip
STORY_FRAMES = (
    "{time_ago_cap}, {event}.", "It was a {weekday} in {month}, and {event}.", "{time_ago_cap}, I was in {city}, and {event}.",
    "At first, {event}.", "Then one morning, {event}.", "A week later, {event}.", "{relative_cap} told me that {lesson}.",
    "I still remember the day {event}.", "So, {time_ago}, {event}.",
)  # fmt: skip
STORY_ENDS = ("And that is when I learned that {lesson}.", "The lesson for me was simple: {lesson}.",
              "Since then, I believe that {lesson}.", "So what did I learn? I learned that {lesson}.",
              "It took me a while, but now I know that {lesson}.")  # fmt: skip
EXPLAIN_INTROS = ("Here is how it works.", "Let me explain.", "Why is that? Let me show you.",
                  "The reason is simple.", "Let's look at this more closely.", "How does that work? It is easier than it sounds.")  # fmt: skip
NUMBER_INTROS = ("Let's look at some numbers.", "Here are a few numbers.", "The numbers are interesting.",
                 "Now, some numbers, and I promise they are short.")  # fmt: skip
QUESTION_ANSWERS = ("Well, it depends.", "Good question.", "Let me answer that with an example.",
                    "Let's think about it for a moment.", "Here is what I found out.", "It is simpler than you think.",
                    "Most people get this wrong.", "I asked myself the same thing.")  # fmt: skip
# Sentences that pair a topic's advice with a lesson or a person: many combinations, few repeats.
REMARKS = (
    "When you {point}, you will notice that {lesson}.", "If you {point}, you will see that {lesson}.",
    "{name} always says: {point}.", "I asked {name} about it, and the answer was simple: {point}.",
    "{relative_cap} taught me to {point}.", "The people who {point} are usually the ones who succeed.",
    "Why should you {point}? Because {lesson}.", "It is easy to forget, but {lesson}.",
    "Here is the thing: {lesson}.", "I used to think this was silly. Now I {point} every week.",
    "{name} and I tried it for a month, and we both learned that {lesson}.",
    "You do not have to be an expert. Just {point}.", "Every time I {point}, I remember that {lesson}.",
    "It took me years to understand that {lesson}.", "Do you know what {name} did? {name} decided to {point}.",
    "This is why I always {point}.", "My advice? {point_cap}.", "Try it tomorrow: {point}.",
    "Some people laugh at this, but {lesson}.", "Most of us know that {lesson}, but we forget it.",
)  # fmt: skip
CONTRAST = ("On the one hand, {pro}. On the other hand, {con}.", "Yes, {pro}. But {con}.",
            "Some people say that {pro}. That is true, but {con}.", "It is true that {pro}. However, {con}.")  # fmt: skip
CLOSINGS = (
    "So, to sum up: {lesson}.", "That is all I have for today. Thank you!", "Thanks for listening.",
    "So next time, {point}.", "And that is really the whole idea.", "I hope this was useful. Thank you very much.",
    "Let's stop here. Any questions?", "So that's it. Thank you all.", "Try it this week, and tell me how it went.",
)  # fmt: skip

STORY_REACTIONS = ("I could not believe it.", "It was a disaster.", "It was wonderful.", "Nobody saw it coming.",
                   "I was so proud.", "We laughed about it for weeks.")  # fmt: skip
NUMBER_REACTIONS = ("That is a lot.", "That is more than most people guess.", "Not bad, right?",
                    "Think about what that means.", "That number surprised me.", "And it is growing every year.")  # fmt: skip
SO_LEADS = ("So", "In other words,", "This means that", "For me, that means")
ADVICE = ("My advice is simple: {point}.", "If you do only one thing, {point}.", "Please, {point}.",
          "Here is a small tip: {point}.", "I always tell people to {point}.", "Whatever you do, {point}.")  # fmt: skip

# -- topics and hand-written paragraphs (talks.yaml) -------------------------------------------------
TALKS_FILE = Path(__file__).with_name("talks.yaml")


@dataclass(frozen=True)
class Topic:
    name: str  # as said in "Today I want to talk about {topic}."
    points: tuple[str, ...]  # imperative clauses: "water your plants in the morning"
    facts: tuple[str, ...]  # declarative sentences (slots allowed)
    events: tuple[str, ...]  # first-person past clauses for stories
    lessons: tuple[str, ...]  # clauses: "small changes add up"
    questions: tuple[str, ...]  # full questions
    pros: tuple[str, ...] = field(default=())
    cons: tuple[str, ...] = field(default=())


@cache
def _material() -> tuple[tuple[Topic, ...], tuple[str, ...]]:
    data = yaml.safe_load(TALKS_FILE.read_text(encoding="utf-8"))
    topics = tuple(Topic(**{k: v if k == "name" else tuple(v) for k, v in t.items()}) for t in data["topics"])
    return topics, tuple(data["paragraphs"])


def topics() -> tuple[Topic, ...]:
    return _material()[0]


def paragraphs() -> tuple[str, ...]:
    return _material()[1]


# -- filling ----------------------------------------------------------------------------------------


class _Slots(dict):
    """Template slots: a value is drawn the first time a slot is used, then kept for the sentence."""

    def __init__(self, rng: np.random.Generator, topic: Topic, used: set | None = None):
        super().__init__()
        self.rng, self.topic = rng, topic
        self.used = set() if used is None else used  # phrases already said in this talk

    def pick(self, seq):
        """A random element, preferring ones this talk has not used yet."""
        fresh = [x for x in seq if x not in self.used]
        pool = fresh or list(seq)
        value = pool[int(self.rng.integers(len(pool)))]
        self.used.add(value)
        return value

    def __missing__(self, key: str) -> str:
        cap = key.endswith("_cap")
        base = key[:-4] if cap else key
        value = self._draw(base)
        value = value[:1].upper() + value[1:] if cap else value
        self[key] = value
        return value

    def _draw(self, key: str) -> str:
        r, t = self.rng, self.topic
        simple = {
            "name": NAMES, "relative": RELATIVES, "weekday": WEEKDAYS, "month": MONTHS, "city": CITIES,
            "time_ago": TIME_AGO, "point": t.points, "lesson": t.lessons, "event": t.events,
            "pro": t.pros or t.lessons, "con": t.cons or t.lessons,
        }  # fmt: skip
        if key in simple:
            return str(self.pick(simple[key])).format_map(self)
        if key == "topic":
            return t.name
        if key == "percent":
            return str(int(r.integers(2, 19)) * 5)
        if key == "num_small":
            return str(self.pick(("three", "four", "five", "six", "seven", "ten")))
        if key == "num":
            return str(int(r.integers(12, 400)))
        if key == "bignum":
            return self.pick(BIG_NUMBERS)
        if key == "year_old":
            return str(int(r.integers(1880, 1896)))
        if key == "year_future":
            return str(int(r.integers(2040, 2071)))
        if key == "n":
            return COUNT_WORDS[int(r.integers(2, 5))]
        raise KeyError(key)


_SPACE = re.compile(r"\s+")


def _fill(template: str, slots: _Slots) -> str:
    text = template.format_map(slots)
    text = _SPACE.sub(" ", text).strip()
    return text[:1].upper() + text[1:]


def _sentences(text: str) -> list[str]:
    """Split filled text into sentences (after . ! ? followed by a space and a capital)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", text.strip())
    return [p for p in parts if p]


# -- moves --------------------------------------------------------------------------------------------
def _move_list(r: np.random.Generator, s: _Slots) -> list[str]:
    n = int(r.choice([2, 3, 3, 3, 4]))
    s["n"] = COUNT_WORDS[n]
    out = [_fill(str(s.pick(LIST_INTROS)), s)]
    points = list(r.permutation(len(s.topic.points))[:n])
    for i, p in enumerate(points):
        last = i == n - 1 and n >= 3 and r.random() < 0.5
        lead = str(s.pick(ORDINALS[3] if last else ORDINALS[i]))
        item = str(s.pick(LIST_ITEMS)).replace("{point}", s.topic.points[p])
        out.append(_fill(f"{lead} {item}", s))
        if r.random() < 0.25:
            out.append(str(s.pick(AFFIRM)))
    return out


def _move_story(r: np.random.Generator, s: _Slots) -> list[str]:
    out = [str(s.pick(STORY_INTROS))]
    frames = list(r.permutation(len(STORY_FRAMES)))
    for k in range(int(r.integers(2, 4))):
        s.pop("event", None)
        s["event"] = str(s.pick(s.topic.events)).format_map(s)
        out.append(_fill(STORY_FRAMES[frames[k]], s))
        if r.random() < 0.3:
            out.append(str(s.pick(STORY_REACTIONS)))
    out.append(_fill(str(s.pick(STORY_ENDS)), s))
    return out


def _move_explain(r: np.random.Generator, s: _Slots) -> list[str]:
    out = [str(s.pick(EXPLAIN_INTROS))]
    for _ in range(int(r.integers(2, 4))):
        lead = str(s.pick(CONNECTORS)) + " " if r.random() < 0.35 else ""
        text = _fill(str(s.pick(s.topic.facts)), s)
        if lead and not text.startswith(("I ", "A ")):
            text = text[:1].lower() + text[1:]
        out.append(lead + text)
    if r.random() < 0.5:
        out.append(str(s.pick(AFFIRM)))
    return out


def _move_numbers(r: np.random.Generator, s: _Slots) -> list[str]:
    out = [str(s.pick(NUMBER_INTROS))]
    with_num = [f for f in s.topic.facts if "{" in f] or list(s.topic.facts)
    for _ in range(int(r.integers(1, 3))):
        out.append(_fill(str(s.pick(with_num)), s))
        if r.random() < 0.5:
            out.append(str(s.pick(NUMBER_REACTIONS)))
    return out


def _move_question(r: np.random.Generator, s: _Slots) -> list[str]:
    q = str(s.pick(s.topic.questions))
    out = [q]
    if r.random() < 0.5:
        out.append(str(s.pick(QUESTION_ANSWERS)))
    out.append(_fill(str(s.pick(s.topic.facts)), s))
    if r.random() < 0.5:
        out.append(_fill(f"{s.pick(SO_LEADS)} {{lesson}}.", s))
    return out


def _move_contrast(r: np.random.Generator, s: _Slots) -> list[str]:
    out = _sentences(_fill(str(s.pick(CONTRAST)), s))
    if r.random() < 0.5:
        out.append(str(s.pick(AFFIRM)))
    return out


def _move_remarks(r: np.random.Generator, s: _Slots) -> list[str]:
    out = []
    for _ in range(int(r.integers(2, 4))):
        for k in ("point", "point_cap", "lesson", "name", "relative_cap"):
            s.pop(k, None)
        out += _sentences(_fill(str(s.pick(REMARKS)), s))
    return out


def _move_paragraph(r: np.random.Generator, s: _Slots) -> list[str]:
    return _sentences(_fill(str(s.pick(paragraphs())), s))


def _move_advice(r: np.random.Generator, s: _Slots) -> list[str]:
    out = [_fill(str(s.pick(ADVICE)), s)]
    s.pop("point", None)
    if r.random() < 0.6:
        why = r.random() < 0.4
        out.append(_fill("{lesson_cap}, and that is why it works.", s) if why else str(s.pick(AFFIRM)))
    return out


MOVES = {
    "list": (_move_list, 3.0),
    "story": (_move_story, 2.5),
    "explain": (_move_explain, 2.5),
    "numbers": (_move_numbers, 1.2),
    "question": (_move_question, 2.0),
    "contrast": (_move_contrast, 1.2),
    "paragraph": (_move_paragraph, 1.5),
    "advice": (_move_advice, 1.5),
    "remarks": (_move_remarks, 3.0),
}


@dataclass(frozen=True)
class Talk:
    """One item's script: sentences in order, the topic and the moves used."""

    sentences: tuple[str, ...]
    topic: str
    moves: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def num_words(self) -> int:
        return len(self.text.split())


def make_talk(rng: np.random.Generator, target_words: int) -> Talk:
    """A talk of about `target_words` words (it stops after the move that reaches it)."""
    all_topics = topics()
    topic = all_topics[int(rng.integers(len(all_topics)))]
    sentences: list[str] = []
    moves: list[str] = []
    used: set = set()
    if rng.random() < 0.45:
        s = _Slots(rng, topic, used)
        sentences.append(_fill(str(s.pick(OPENINGS)), s))
        sentences.append(_fill(str(s.pick(INTROS)), s))
        moves.append("opening")
    names = list(MOVES)
    weights = np.array([MOVES[n][1] for n in names])
    last = None
    closing = rng.random() < 0.4
    while sum(len(x.split()) for x in sentences) < target_words * (0.85 if closing else 1.0):
        w = weights.copy()
        if last is not None:
            w[names.index(last)] *= 0.2
        name = names[int(rng.choice(len(names), p=w / w.sum()))]
        sentences += MOVES[name][0](rng, _Slots(rng, topic, used))
        moves.append(name)
        last = name
    if closing:
        s = _Slots(rng, topic, used)
        sentences += _sentences(_fill(str(s.pick(CLOSINGS)), s))
        moves.append("closing")
    return Talk(tuple(_clean(x) for x in sentences), topic.name, tuple(moves))


def _clean(sentence: str) -> str:
    sentence = _SPACE.sub(" ", sentence).strip()
    sentence = sentence.replace(" ,", ",").replace("..", ".")
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return sentence[:1].upper() + sentence[1:]


__all__ = ["Talk", "Topic", "make_talk", "paragraphs", "topics"]
