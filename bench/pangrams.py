"""Sentences that hold every letter (z, q, j and x included): the benches' hardest ordinary text."""

PANGRAMS = [
    "The quick brown fox jumps over the lazy dog",
    "Sphinx of black quartz, judge my vow",
    "Pack my box with five dozen liquor jugs",
    "How vexingly quick daft zebras jump",
    "The five boxing wizards jump quickly",
    "Jackdaws love my big sphinx of quartz",
    "A wizard's job is to vex chumps quickly",
    "Bright vixens jump; dozy fowl quack",
    "Quick zephyrs blow, vexing daft Jim",
    "Waltz, bad nymph, for quick jigs vex",
    "Glib jocks quiz nymph to vex dwarf",
    "Jived fox nymph grabs quick waltz",
    "Crazy Frederick bought many very exquisite opal jewels",
    "We promptly judged antique ivory buckles for the next prize",
    "Amazingly few discotheques provide jukeboxes",
    "Heavy boxes perform quick waltzes and jigs",
    "Six big devils from Japan quickly forgot how to waltz",
    "Jaded zombies acted quaintly but kept driving their oxen forward",
    "My faxed joke won a pager in the cable TV quiz show",
    "Fix problem quickly with galvanized jets",
]
