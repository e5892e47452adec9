"""The pure core of triage guidance (智能导诊): a symptom description in Chinese → the red flags
it raises, or the department kinds it suggests with the words that led there. No I/O, no clock.

1. The text is normalised (NFKC: full-width digits and punctuation) and cut into clauses at
   punctuation; each clause is segmented with jieba (one tokenizer per process, the knowledge
   base's synonyms added as words, so that "喘不上气" or "从来没这么疼过" stay whole).
2. Terms are found as the longest synonym made of whole tokens (so a synonym that contains a
   negation word is matched before the negation is), then as gapped synonyms ("胸口…疼": up
   to six characters between, never a negation word among them) where nothing else matched;
   a gapped synonym may list alternatives on either side ("胸|胸口|心口…疼|痛|绞痛": a body
   part with a sensation), so that phrasing is covered by combination, not one by one.
3. Negation: a negation word ("没有", "不", "否认", …) negates the terms after it in its clause
   until a contrast word ("但是", "就是", "还有", …); "发烧倒是没有" negates the term before.
4. Temperatures ("39度5", "体温38.6") and ages ("3岁", "两个月大") are read from the text.
5. Red flags are combinations of terms (each alternative: all of its groups, a group: any of
   its terms); any red flag makes the answer urgent and nothing else is suggested.
6. Otherwise each mentioned term adds its weights to department kinds; a child under
   `child_age_below` sees paediatrics first, a pregnancy obstetrics first, a man no
   gynaecology; nothing recognised answers the fallback kind."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jieba

# "没有胸痛" / "不发烧" / "否认胸闷": the terms after these, up to a contrast word, are negated
NEGATORS = frozenset({"没有", "没", "无", "不", "未", "否认", "不是", "并没有", "并没", "并不", "从没", "从没有",
                      "从来没有", "从来没", "从未", "没再", "不再", "没怎么", "不怎么", "不会", "未见", "没出现",
                      "也没有", "也没", "都没有", "都没", "也不", "都不", "没发现", "无明显", "没什么", "没啥"})
# "没有发烧,但是咳嗽": these end a negation's reach within the clause
RESETS = frozenset({"但", "但是", "可是", "可", "不过", "只是", "就是", "却", "而是", "倒是", "反而", "然而", "还有",
                    "然后", "后来", "现在", "有点", "有点儿", "有些", "有", "也有", "还", "老是", "总是", "经常",
                    "一直", "偶尔", "主要", "主要是", "只有", "而且", "并且", "同时", "另外", "反倒"})
# "发烧倒是没有" / "烧已经退了": a term followed by these (and the clause's end) is negated
# "以前有过一次晕倒": history, not what brings the patient now; it weighs for departments but
# raises no red flag, up to a word that brings the text back to now
HISTORY = frozenset({"以前", "之前", "去年", "前年", "曾经", "过去", "上次", "上回", "小时候", "以往", "既往",
                     "年前", "早年", "那年", "当年", "年轻时", "年轻的时候", "前几年", "几年前", "多年前", "做过"})
NOW = frozenset({"现在", "这次", "今天", "最近", "刚才", "刚刚", "突然", "这两天", "这几天", "目前", "此刻", "今早",
                 "今晚", "昨天", "昨晚", "但是", "但", "可是", "不过", "又", "这回", "眼下", "今天早上"})
POST_NEGATORS = frozenset({"没有", "没", "无", "好了", "退了", "消了", "没了", "不明显", "没什么", "消失了"})
POST_FILLERS = frozenset({"也", "都", "倒", "倒是", "是", "还", "并", "已经", "早就", "基本", "基本上", "早"})
CLAUSE_END = frozenset({"了", "过", "啊", "呀", "的", "哦", "吧", "呢"})
NEGATION_CHARS = frozenset("不没无未别非否")
GAP = "…"
ALT = "|"
MAX_GAP = 6
MAX_NGRAM = 8

_CLAUSES = re.compile(r"[,，。.!！?？;；:：\s~…\-—/|()（）\[\]【】\"“”'‘’]+")
_TEMPERATURE = re.compile(r"(\d{2}(?:\.\d{1,2})?)\s*(?:度|°c|°|℃)(\d)?")
_TEMPERATURE_WORD = re.compile(r"(?:体温|烧到|烧了|发烧|高烧|发热|温度)(?:是|有|达到|到了|到|都|快|差不多)?"
                               r"\s*(\d{2}(?:\.\d{1,2})?)")
_AGE = re.compile(r"(\d{1,3})\s*(?:周岁|岁)")
_CN_AGE = re.compile(r"([一二两三四五六七八九十]{1,3})(?:多)?\s*(?:周岁|岁)")
_MONTHS = re.compile(r"(\d{1,2}|[一二两三四五六七八九十]{1,2})\s*个多?月(?:大(?![便小])|的宝宝|的孩子|的婴儿)")
_DAYS_OLD = re.compile(r"(?:出生|生下来)\s*(\d{1,2}|[一二两三四五六七八九十]{1,3})\s*天"
                       r"|(\d{1,2}|[一二两三四五六七八九十]{1,3})\s*天(?:大|的宝宝|的孩子)")
_BLOOD_PRESSURE = re.compile(r"(?:血压|高压|低压)[^0-9]{0,6}(\d{2,3})\s*/\s*(\d{2,3})")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


# --- the knowledge base, compiled ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Kind:
    """A department kind (心内科, 儿科, …); `sex` limits it to one sex (妇科, 产科)."""

    code: str
    name_zh: str
    name_en: str
    sex: str | None = None
    sort: int = 0


@dataclass(frozen=True, slots=True)
class Term:
    """A symptom or a circumstance with its synonyms (the patient's words) and what it weighs
    for each department kind (none: a term that only red flags read, such as "突然")."""

    id: str
    name_zh: str
    name_en: str
    synonyms: tuple[str, ...]
    weights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RedFlag:
    """A combination of terms that needs the emergency department now. `when` holds the
    alternatives; an alternative fires when each of its groups has one of its terms."""

    id: str
    name_zh: str
    name_en: str
    message_zh: str
    message_en: str
    when: tuple[tuple[frozenset[str], ...], ...]
    hotline_zh: str | None = None
    hotline_en: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The modifiers: who goes where first, and what answers when nothing is recognised."""

    child_age_below: int = 14
    child_kind: str = "pediatrics"
    pregnancy_kind: str = "obstetrics"
    fallback_kind: str = "general"
    child_term: str = "child"
    infant_term: str = "infant"
    pregnancy_term: str = "pregnancy"
    fever_term: str = "fever"
    high_fever_term: str = "high_fever"
    hypertension_term: str = "hypertension"
    high_fever_from: float = 39.0
    fever_from: float = 37.3
    max_departments: int = 3
    keep_share: float = 0.3  # a kind is suggested when it scores at least this share of the first


class Knowledge:
    """The compiled knowledge base: synonyms indexed, gapped synonyms split, kinds by code."""

    def __init__(self, kinds: Iterable[Kind], terms: Iterable[Term], red_flags: Iterable[RedFlag],
                 settings: Settings | None = None) -> None:
        self.kinds = {k.code: k for k in kinds}
        self.terms = {t.id: t for t in terms}
        self.red_flags = tuple(red_flags)
        self.settings = settings or Settings()
        self.index: dict[str, str] = {}
        self.gapped: list[tuple[str, str, str, str]] = []  # (head, tail, synonym, term id)
        for term in self.terms.values():
            for syn in term.synonyms:
                if GAP in syn:  # "胸|胸口…疼|痛": every head with every tail
                    heads, _, tails = syn.partition(GAP)
                    self.gapped.extend((h, t, syn, term.id) for h in heads.split(ALT) for t in tails.split(ALT))
                else:
                    self.index.setdefault(syn, term.id)
        self.gapped.sort(key=lambda g: -len(g[0]) - len(g[1]))
        self.words = frozenset(w for w in self.index if len(w) > 1)
        self.longest = max((len(w) for w in self.index), default=1)


# --- segmentation ------------------------------------------------------------------------------

class _Segmenter:
    """One jieba tokenizer for the process. The knowledge base's words are synced into it when
    they change (a removed word gets the base dictionary's frequency back); cutting and
    syncing take turns under a lock (requests run in a thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._words: frozenset[str] = frozenset()
        self._base: dict[str, int] = {}

    def cut(self, words: frozenset[str], text: str) -> list[str]:
        with self._lock:
            if self._tokenizer is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                self._tokenizer = tokenizer
            if words != self._words:
                self._sync(words)
            return [t for t in self._tokenizer.cut(text, HMM=False) if t.strip()]

    def _sync(self, words: frozenset[str]) -> None:
        tok = self._tokenizer
        for word in self._words - words:
            base = self._base.pop(word, 0)
            tok.add_word(word, base) if base else tok.del_word(word)
        for word in sorted(words - self._words):
            self._base[word] = int(tok.FREQ.get(word) or 0)
            tok.add_word(word)
        self._words = words


_segmenter = _Segmenter()


# --- analysis ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mention:
    """A term found in the text: `said` is the patient's own words for it; `past` when the
    clause speaks of history ("以前…")."""

    term: str
    said: str
    negated: bool = False
    past: bool = False


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str
    score: int
    said: tuple[str, ...]  # the patient's words that led here, strongest first
    terms: tuple[str, ...]
    modifier: str | None = None  # "child" | "pregnancy" | "fallback"


@dataclass(frozen=True, slots=True)
class Analysis:
    urgent: bool
    red_flags: tuple[RedFlag, ...]
    departments: tuple[Recommendation, ...]
    mentions: tuple[Mention, ...]
    age: int | None
    child: bool
    pregnant: bool

    @property
    def recognised(self) -> tuple[Mention, ...]:
        return tuple(m for m in self.mentions if not m.negated)

    @property
    def denied(self) -> tuple[Mention, ...]:
        return tuple(m for m in self.mentions if m.negated)

    @property
    def unmatched(self) -> bool:
        return not self.urgent and bool(self.departments) and self.departments[0].modifier == "fallback"


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().strip()


def clauses(text: str) -> list[str]:
    return [c for c in _CLAUSES.split(text) if c]


def _cn_number(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    if raw == "十":
        return 10
    if "十" in raw:
        tens, _, ones = raw.partition("十")
        value = (_CN_DIGITS.get(tens, 0) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
        return value if (not tens or tens in _CN_DIGITS) and (not ones or ones in _CN_DIGITS) else None
    return _CN_DIGITS.get(raw) if len(raw) == 1 else None


def age_in(text: str) -> tuple[int | None, bool]:
    """(age in whole years, an infant under three months) as the text says, if it does."""
    m = _MONTHS.search(text)
    if m and (months := _cn_number(m.group(1))) is not None:
        return months // 12, months < 3
    m = _DAYS_OLD.search(text)
    if m and (days := _cn_number(m.group(1) or m.group(2))) is not None and days <= 90:
        return 0, True
    m = _AGE.search(text) or _CN_AGE.search(text)
    if m and (years := _cn_number(m.group(1))) is not None and years <= 120:
        return years, False
    return None, False


def temperature_in(text: str) -> float | None:
    """The highest body temperature the text names (35–43 °C), if any."""
    found: list[float] = []
    for m in _TEMPERATURE.finditer(text):
        value = float(m.group(1))
        if m.group(2) and "." not in m.group(1):  # 39度5
            value += int(m.group(2)) / 10
        found.append(value)
    found.extend(float(m.group(1)) for m in _TEMPERATURE_WORD.finditer(text))
    plausible = [v for v in found if 35.0 <= v <= 43.0]
    return max(plausible) if plausible else None


def blood_pressure_in(text: str) -> tuple[int, int] | None:
    """The highest blood pressure reading the text names ("血压160/100"), if any."""
    found = [(int(m.group(1)), int(m.group(2))) for m in _BLOOD_PRESSURE.finditer(text)]
    plausible = [p for p in found if 60 <= p[0] <= 300 and 30 <= p[1] <= 200 and p[0] > p[1]]
    return max(plausible) if plausible else None


def _post_negated(tokens: Sequence[str], j: int) -> bool:
    """"发烧倒是没有": after the term only fillers, a negation and the clause's end."""
    k = j
    while k < len(tokens) and tokens[k] in POST_FILLERS:
        k += 1
    for width in (2, 1):
        if k + width <= len(tokens) and "".join(tokens[k:k + width]) in POST_NEGATORS:
            rest = tokens[k + width:]
            return all(t in CLAUSE_END for t in rest)
    return False


def _in_token(kb: Knowledge, token: str, *, whole: bool = False) -> list[tuple[str, str]]:
    """Synonyms inside one token that no whole-token synonym covers ("硬邦邦的", "流感疫苗"):
    the longest first, then the longest in what is left on either side (two characters or more)."""
    for size in range(min(len(token) - (0 if whole else 1), kb.longest), 1, -1):
        for start in range(len(token) - size + 1):
            word = token[start:start + size]
            if word in kb.index:
                left = _in_token(kb, token[:start], whole=True) if start > 1 else []
                rest = token[start + size:]
                right = _in_token(kb, rest, whole=True) if len(rest) > 1 else []
                return [*left, (kb.index[word], word), *right]
    return []


def _clause_mentions(kb: Knowledge, clause: str) -> list[Mention]:
    tokens = _segmenter.cut(kb.words, clause)
    found: list[Mention] = []
    spans: list[tuple[int, int]] = []  # character spans of the matches (gapped ones must not overlap)
    negated = past = False
    i, pos = 0, 0
    while i < len(tokens):
        hit: tuple[str, str, int] | None = None
        for j in range(min(len(tokens), i + MAX_NGRAM), i, -1):
            word = "".join(tokens[i:j])
            if word in kb.index:
                hit = (kb.index[word], word, j)
                break
        token = tokens[i]
        if hit is None and len(token) > 2 and (inner := _in_token(kb, token)):
            prefix_negated = token[0] in NEGATION_CHARS and not token.startswith(inner[0][1])
            after = _post_negated(tokens, i + 1)
            found.extend(Mention(term, word, negated or prefix_negated or after, past) for term, word in inner)
            spans.append((pos, pos + len(token)))
            pos += len(token)
            i += 1
            continue
        if hit is not None:
            term, word, j = hit
            found.append(Mention(term, word, negated or _post_negated(tokens, j), past))
            spans.append((pos, pos + len(word)))
            pos += len(word)
            i = j
            continue
        negated, past = _step(token, negated, past)
        pos += len(token)
        i += 1
    found.extend(_gapped(kb, clause, tokens, spans, {m.term for m in found}))
    return found


def _state_at(tokens: Sequence[str], char: int) -> tuple[bool, bool]:
    """Whether a negation word, and whether a history word, reach the token at offset `char`."""
    negated = past = False
    pos = 0
    for token in tokens:
        if pos >= char:
            break
        negated, past = _step(token, negated, past)
        pos += len(token)
    return negated, past


def _step(token: str, negated: bool, past: bool) -> tuple[bool, bool]:
    """The negation and history state after `token`: a negator sets negation until a reset word,
    a history word sets the past until a word of now."""
    if token in NEGATORS:
        negated = True
    elif token in RESETS:
        negated = False
    if token in HISTORY:
        past = True
    elif token in NOW:
        past = False
    return negated, past


def _gapped(kb: Knowledge, clause: str, tokens: Sequence[str], spans: list[tuple[int, int]],
            seen: set[str]) -> list[Mention]:
    """Gapped synonyms ("胸口…疼") where the clause has no other mention of the term. The gap may
    hold other mentions ("嘴角往右边歪"); the head must start a word ("低头…疼" is no headache)
    and the tail start or end one ("肿起来"), neither inside another mention ("头两天肚子疼" is
    no headache either), and no negation word may sit in the gap ("头不疼")."""
    out: list[Mention] = []
    starts, ends, pos = set(), set(), 0
    for token in tokens:
        starts.add(pos)
        pos += len(token)
        ends.add(pos)
    for head, tail, _syn, term in kb.gapped:
        if term in seen:
            continue
        start = clause.find(head)
        while start >= 0:
            begin = start + len(head)
            end = clause.find(tail, begin, begin + MAX_GAP + len(tail))
            if end >= 0:
                gap = clause[begin:end]
                stop = end + len(tail)
                inside_word = (start not in starts or (end not in starts and stop not in ends)
                               or any(a < start < b or a < end < b for a, b in spans))
                if not inside_word and not NEGATION_CHARS.intersection(gap):
                    out.append(Mention(term, clause[start:stop], *_state_at(tokens, start)))
                    spans.append((start, stop))
                    seen.add(term)
                    break
            start = clause.find(head, start + 1)
    return out


def mentions_in(kb: Knowledge, text: str) -> list[Mention]:
    """Every term the text mentions, in order, negated or not (a term said both ways counts as said)."""
    out: list[Mention] = []
    for clause in clauses(normalise(text)):
        out.extend(_clause_mentions(kb, clause))
    return out


def _fires(flag: RedFlag, present: set[str]) -> bool:
    return any(all(group & present for group in alternative) for alternative in flag.when)


def analyse(kb: Knowledge, text: str, *, age: int | None = None, sex: str | None = None,
            pregnant: bool | None = None) -> Analysis:
    """Red flags first; without any, the department kinds with their reasons."""
    s = kb.settings
    norm = normalise(text)
    mentions = mentions_in(kb, norm)
    said_age, infant = age_in(norm)
    eff_age = said_age if said_age is not None else age
    present = {m.term for m in mentions if not m.negated and not m.past}
    temperature = temperature_in(norm)
    if temperature is not None and temperature >= s.fever_from:
        term = s.high_fever_term if temperature >= s.high_fever_from else s.fever_term
        mentions.append(Mention(term, f"{temperature:g}℃"))
        present.add(term)
    if (pressure := blood_pressure_in(norm)) is not None and (pressure[0] >= 140 or pressure[1] >= 90):
        mentions.append(Mention(s.hypertension_term, f"{pressure[0]}/{pressure[1]}"))
        present.add(s.hypertension_term)
    if s.high_fever_term in present:
        present.add(s.fever_term)
    if infant:
        present.add(s.infant_term)
    if s.infant_term in present or (eff_age is not None and eff_age < s.child_age_below):
        present.add(s.child_term)
    if pregnant:
        present.add(s.pregnancy_term)
    child = s.child_term in present
    is_pregnant = s.pregnancy_term in present
    fired = tuple(f for f in kb.red_flags if _fires(f, present))
    if fired:
        return Analysis(True, fired, (), tuple(mentions), eff_age, child, is_pregnant)
    sex = "female" if is_pregnant else sex
    ranked = _rank(kb, mentions, sex=sex, child=child, pregnant=is_pregnant)
    return Analysis(False, (), ranked, tuple(mentions), eff_age, child, is_pregnant)


def _allowed(kind: Kind | None, sex: str | None) -> bool:
    return kind is not None and (kind.sex is None or sex not in ("male", "female") or kind.sex == sex)


def _rank(kb: Knowledge, mentions: Sequence[Mention], *, sex: str | None, child: bool, pregnant: bool
          ) -> tuple[Recommendation, ...]:
    s = kb.settings
    scores: dict[str, int] = {}
    reasons: dict[str, list[tuple[int, str, str]]] = {}
    counted: set[str] = set()
    for m in mentions:
        term = kb.terms.get(m.term)
        if m.negated or term is None or m.term in counted:
            continue
        counted.add(m.term)
        for kind, weight in term.weights.items():
            if weight > 0 and _allowed(kb.kinds.get(kind), sex):
                scores[kind] = scores.get(kind, 0) + weight
                reasons.setdefault(kind, []).append((weight, m.said, m.term))
    modifiers: dict[str, str] = {}
    for flag, code, reason in ((child, s.child_kind, "child"), (pregnant, s.pregnancy_kind, "pregnancy")):
        if flag and code in kb.kinds:
            scores[code] = max(scores.values(), default=0) + 1
            modifiers[code] = reason
    if pregnant:
        for kind in [k for k, v in kb.kinds.items() if v.sex == "female" and k != s.pregnancy_kind]:
            scores.pop(kind, None)
    if not scores:
        return (Recommendation(s.fallback_kind, 0, (), (), "fallback"),)
    order = sorted(scores, key=lambda k: (-scores[k], kb.kinds[k].sort, k))
    top = scores[order[0]]
    out: list[Recommendation] = []
    for kind in order[:s.max_departments]:
        if scores[kind] < top * s.keep_share:
            break
        why = sorted(reasons.get(kind, []), key=lambda r: -r[0])
        said = tuple(dict.fromkeys(r[1] for r in why))
        out.append(Recommendation(kind, scores[kind], said, tuple(dict.fromkeys(r[2] for r in why)),
                                  modifiers.get(kind)))
    return tuple(out)
