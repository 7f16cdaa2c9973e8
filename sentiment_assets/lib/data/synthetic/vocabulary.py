"""The words synthetic tweets are made of: topics, sentiment words, slang, decorations, users."""

from __future__ import annotations

# Each topic: (subjects, hashtags, positive words, negative words). Baseline topics use only the
# generic sentiment words; shifted topics bring their own, which a pre-drift model never saw.
BASELINE_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "phones": (
        (
            "my new phone",
            "this phone",
            "the battery life",
            "the camera on this phone",
            "the ios update",
            "my android",
            "the new charger",
        ),
        ("#iphone", "#android", "#tech"),
    ),
    "coffee": (
        (
            "my morning coffee",
            "this latte",
            "the new cafe downtown",
            "the cold brew",
            "the espresso here",
            "the oat milk cappuccino",
        ),
        ("#coffee", "#caffeine", "#mondaymorning"),
    ),
    "movies": (
        (
            "the new movie",
            "that trailer",
            "the season finale",
            "this show",
            "the sequel",
            "the soundtrack",
        ),
        ("#movies", "#netflix", "#cinema"),
    ),
    "weather": (
        (
            "the weather today",
            "this rain",
            "the sunshine",
            "the heatwave",
            "the snow",
            "the forecast for the weekend",
        ),
        ("#weather", "#rain", "#sunday"),
    ),
    "music": (
        ("the new album", "that concert", "this playlist", "the opening act", "their new single"),
        ("#music", "#nowplaying"),
    ),
}
SHIFTED_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "crypto": (
        ("bitcoin", "my wallet", "this altcoin", "the token launch", "eth gas fees"),
        ("#btc", "#crypto", "#hodl"),
    ),
    "elections": (
        ("the debate", "the polls", "the candidate", "the campaign ad", "the primaries"),
        ("#election", "#vote", "#politics"),
    ),
    "gaming": (
        ("the new patch", "this raid", "the ranked queue", "the dlc", "my new build"),
        ("#gaming", "#esports", "#twitch"),
    ),
    "ai": (
        ("this chatbot", "the new model", "the image generator", "the ai assistant"),
        ("#ai", "#llm", "#genai"),
    ),
}
TOPIC_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "crypto": (("bullish", "mooning", "printing gains"), ("bearish", "rugged", "rekt", "dumping")),
    "elections": (("inspiring", "a landslide", "hopeful"), ("rigged", "corrupt", "shameful")),
    "gaming": (("goated", "clutch", "poggers"), ("laggy", "pay2win", "nerfed", "buggy")),
    "ai": (("mindblowing", "genius"), ("hallucinating", "creepy", "glitchy")),
}
# Words that only occur in shifted-topic tweets: lets tests and drift statistics measure
# vocabulary drift.
SHIFTED_VOCABULARY: frozenset[str] = frozenset(
    word
    for subjects, tags in SHIFTED_TOPICS.values()
    for phrase in subjects + tags
    for word in phrase.lstrip("#").split()
    if word not in {"the", "my", "this", "new"}
)

POSITIVE_ADJECTIVES = (
    "great",
    "awesome",
    "amazing",
    "good",
    "perfect",
    "fantastic",
    "lovely",
    "brilliant",
    "beautiful",
    "fun",
    "wonderful",
    "excellent",
)
NEGATIVE_ADJECTIVES = (
    "terrible",
    "awful",
    "bad",
    "horrible",
    "boring",
    "annoying",
    "disappointing",
    "broken",
    "useless",
    "sad",
    "ugly",
    "lame",
)
POSITIVE_VERBS = ("love", "adore", "enjoy", "really like")
NEGATIVE_VERBS = ("hate", "can't stand", "despise", "am so done with")
# Slang whose meaning flips under concept drift: praise before, complaint after.
FLIPPING_SLANG = ("sick", "wicked", "insane", "savage")

INTENSIFIERS = ("", "", "so ", "really ", "super ", "kinda ", "totally ", "sooo ")
OPENERS = (
    "",
    "",
    "",
    "ngl ",
    "honestly ",
    "ok so ",
    "tbh ",
    "lol ",
    "omg ",
    "just saying, ",
    "update: ",
    "well ",
)
TAILS = (
    "",
    "",
    "",
    " today",
    " tonight",
    " tbh",
    "!!",
    "!!!",
    " lol",
    "...",
    " this morning",
    " again",
    " fr",
)
ENTITY_TAILS = (
    " &amp; it's only monday",
    " &quot;as usual&quot;",
    " (work &gt; sleep)",
    " &amp; the rest of it",
    " &lt;- me",
)
POSITIVE_EMOJI = ("😀", "😍", "❤️", "🙌", "🔥", ":)", ":D", "<3")
NEGATIVE_EMOJI = ("😢", "😡", "💔", "🙄", ":(", ":/", "😩")
TYPOS = {
    "great": "gr8",
    "love": "luv",
    "really": "rly",
    "tonight": "2nite",
    "you": "u",
    "good": "gud",
    "thanks": "thx",
    "please": "plz",
    "before": "b4",
    "because": "bc",
}
USER_PARTS = (
    ("sunny", "lazy", "tiny", "mad", "cool", "happy", "night", "blue", "wild", "quiet"),
    ("fox", "panda", "coder", "girl", "dude", "cat", "owl", "rider", "chef", "nerd"),
)
