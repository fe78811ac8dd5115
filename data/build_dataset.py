"""Build the course's own instruction data set: data/course-instructions.json (notebook 01 uses it).

Every record is written by this script from word lists, fact tables and sentence templates that the
course wrote itself (no outside data set). The output is deterministic: one seeded ``random.Random``,
lists only (no set or dict iteration that could change order), so the same command gives the same bytes
on every Python version.

    python data/build_dataset.py           # (re)write data/course-instructions.json and print the counts
    python data/build_dataset.py --check   # compare with the committed file; exit 1 on any drift

Each record is ``{"instruction", "input", "output", "family"}`` (Alpaca format plus the task family;
loaders ignore the extra key). There are 42 families, each asked in at least five ways: every instruction
comes from a template registered in ``PHRASINGS`` (questions and imperatives, with and without an input
field, short and long). ``data/README.md`` is the data card; ``tests/test_dataset.py`` re-computes every
answer that can be computed (arithmetic, conversions, word forms, sorting, counting, sequences, Roman
numerals, calendar and clock, sentence rewrites, ...) and matches every instruction to its templates.
Which families are held out of training is decided in ``helpers.data.HOLDOUT_FAMILIES``, not here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

SEED = 20261124
OUT_PATH = Path(__file__).resolve().parent / "course-instructions.json"
# Whole records (instruction + input + output) at least this similar (character 3-gram cosine) to a record
# kept earlier are dropped. The tests allow up to 0.95; building with a stricter bar leaves a margin.
NEAR_DUPLICATE_BUILD_THRESHOLD = 0.90


def rec(family: str, instruction: str, output: str, input_text: str = "") -> dict:
    return {"instruction": instruction, "input": input_text, "output": output, "family": family}


def fmt_int(n: int) -> str:
    """12345 -> '12,345' (the style every numeric answer uses)."""
    return f"{n:,}"


def fmt_number(x: Fraction) -> str:
    """An exact decimal: 5 -> '5', 5/2 -> '2.5', 1234 -> '1,234'. Refuses repeating decimals."""
    x = Fraction(x)
    if x.denominator == 1:
        return fmt_int(x.numerator)
    for places in (1, 2, 3):
        scaled = x * 10**places
        if scaled.denominator == 1:
            whole, frac = divmod(abs(scaled.numerator), 10**places)
            sign = "-" if x < 0 else ""
            return f"{sign}{fmt_int(whole)}.{frac:0{places}d}"
    raise ValueError(f"{x} has no short exact decimal")


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ==================================================================================================
# Word lists and fact tables (written for this course; checked by hand)
# ==================================================================================================

MISSPELLINGS = [  # (misspelled, correct)
    ("recieve", "receive"), ("beleive", "believe"), ("definately", "definitely"), ("seperate", "separate"),
    ("occured", "occurred"), ("untill", "until"), ("tommorow", "tomorrow"), ("wierd", "weird"),
    ("accomodate", "accommodate"), ("goverment", "government"), ("enviroment", "environment"),
    ("neccessary", "necessary"), ("adress", "address"), ("begining", "beginning"),
    ("comming", "coming"), ("freind", "friend"), ("knowlege", "knowledge"), ("libary", "library"),
    ("truely", "truly"), ("writting", "writing"), ("arguement", "argument"), ("acheive", "achieve"),
    ("basicly", "basically"), ("bussiness", "business"), ("embarass", "embarrass"), ("existance", "existence"),
    ("foriegn", "foreign"), ("independant", "independent"), ("occassion", "occasion"), ("persue", "pursue"),
    ("reccomend", "recommend"), ("remeber", "remember"), ("sucess", "success"),
    ("suprise", "surprise"), ("temprature", "temperature"), ("tounge", "tongue"), ("vaccum", "vacuum"),
    ("wensday", "Wednesday"), ("febuary", "February"), ("grammer", "grammar"), ("immediatly", "immediately"),
    ("millenium", "millennium"), ("noticable", "noticeable"), ("posession", "possession"), ("rythm", "rhythm"),
    ("sieze", "seize"), ("tendancy", "tendency"), ("threshhold", "threshold"), ("beautifull", "beautiful"),
    ("becuase", "because"), ("gaurd", "guard"), ("hieght", "height"), ("intresting", "interesting"),
    ("lenght", "length"), ("neice", "niece"), ("peice", "piece"), ("reciept", "receipt"),
    ("strenght", "strength"), ("dissapear", "disappear"), ("excercise", "exercise"),
    ("garantee", "guarantee"), ("mischievious", "mischievous"), ("pronounciation", "pronunciation"),
    ("restaraunt", "restaurant"), ("scissers", "scissors"), ("vegtable", "vegetable"),
]

# Sentences with one misspelled word, and the corrected sentence (hand-written).
SPELLING_SENTENCES = [
    ("I will recieve the package on Monday.", "I will receive the package on Monday."),
    ("She visited the libary after school.", "She visited the library after school."),
    ("We need to seperate the glass from the paper.", "We need to separate the glass from the paper."),
    ("My freind lives next door.", "My friend lives next door."),
    ("The temprature dropped below zero last night.", "The temperature dropped below zero last night."),
    ("He did not beleive the story.", "He did not believe the story."),
    ("The meeting is on Wensday morning.", "The meeting is on Wednesday morning."),
    ("It was a beautifull sunset.", "It was a beautiful sunset."),
    ("They will definately come to the party.", "They will definitely come to the party."),
    ("The restaraunt opens at noon.", "The restaurant opens at noon."),
    ("Please write your adress on the form.", "Please write your address on the form."),
    ("Daily excercise keeps the heart healthy.", "Daily exercise keeps the heart healthy."),
    ("Eat a vegtable with every meal.", "Eat a vegetable with every meal."),
    ("The accident occured near the bridge.", "The accident occurred near the bridge."),
    ("Keep the reciept in case you return the shoes.", "Keep the receipt in case you return the shoes."),
    ("The hotel can accomodate two hundred guests.", "The hotel can accommodate two hundred guests."),
    ("Wait here untill the bell rings.", "Wait here until the bell rings."),
    ("Her pronounciation of French words is excellent.", "Her pronunciation of French words is excellent."),
    ("Cut a small peice of cheese for the mouse.", "Cut a small piece of cheese for the mouse."),
    ("The band played with a steady rythm.", "The band played with a steady rhythm."),
]

PLURALS = [  # (singular, plural)
    # regular -s
    ("cat", "cats"), ("dog", "dogs"), ("book", "books"), ("tree", "trees"), ("car", "cars"),
    ("house", "houses"), ("apple", "apples"), ("bird", "birds"), ("chair", "chairs"), ("pen", "pens"),
    ("flower", "flowers"), ("river", "rivers"), ("garden", "gardens"), ("window", "windows"),
    ("teacher", "teachers"), ("cloud", "clouds"), ("lamp", "lamps"), ("shoe", "shoes"), ("horse", "horses"),
    ("planet", "planets"), ("roof", "roofs"), ("chief", "chiefs"), ("cliff", "cliffs"), ("giraffe", "giraffes"),
    # -es after s, x, z, ch, sh
    ("box", "boxes"), ("bus", "buses"), ("dish", "dishes"), ("church", "churches"), ("watch", "watches"),
    ("fox", "foxes"), ("brush", "brushes"), ("glass", "glasses"), ("class", "classes"), ("match", "matches"),
    ("bench", "benches"), ("beach", "beaches"), ("wish", "wishes"), ("tax", "taxes"), ("dress", "dresses"),
    ("lunch", "lunches"), ("buzz", "buzzes"), ("address", "addresses"),
    # consonant + y -> ies; vowel + y -> ys
    ("city", "cities"), ("baby", "babies"), ("story", "stories"), ("party", "parties"), ("lady", "ladies"),
    ("family", "families"), ("country", "countries"), ("puppy", "puppies"), ("berry", "berries"),
    ("cherry", "cherries"), ("library", "libraries"), ("butterfly", "butterflies"),
    ("boy", "boys"), ("day", "days"), ("key", "keys"), ("toy", "toys"), ("monkey", "monkeys"),
    ("valley", "valleys"), ("donkey", "donkeys"), ("holiday", "holidays"),
    # f / fe -> ves
    ("leaf", "leaves"), ("knife", "knives"), ("wife", "wives"), ("wolf", "wolves"), ("half", "halves"),
    ("shelf", "shelves"), ("loaf", "loaves"), ("calf", "calves"), ("life", "lives"), ("thief", "thieves"),
    # -o
    ("potato", "potatoes"), ("tomato", "tomatoes"), ("hero", "heroes"), ("echo", "echoes"),
    ("piano", "pianos"), ("photo", "photos"), ("radio", "radios"), ("zoo", "zoos"), ("video", "videos"),
    # irregular
    ("mouse", "mice"), ("goose", "geese"), ("tooth", "teeth"), ("foot", "feet"), ("man", "men"),
    ("woman", "women"), ("child", "children"), ("person", "people"), ("ox", "oxen"), ("sheep", "sheep"),
    ("deer", "deer"), ("moose", "moose"), ("louse", "lice"),
]

PAST_TENSES = [  # (verb, simple past)
    # regular
    ("walk", "walked"), ("play", "played"), ("jump", "jumped"), ("talk", "talked"), ("cook", "cooked"),
    ("clean", "cleaned"), ("open", "opened"), ("help", "helped"), ("watch", "watched"), ("paint", "painted"),
    ("visit", "visited"), ("listen", "listened"), ("finish", "finished"), ("start", "started"),
    ("wait", "waited"), ("climb", "climbed"), ("laugh", "laughed"), ("call", "called"), ("want", "wanted"),
    ("ask", "asked"), ("stay", "stayed"), ("enjoy", "enjoyed"), ("happen", "happened"), ("answer", "answered"),
    ("dance", "danced"), ("smile", "smiled"), ("bake", "baked"), ("live", "lived"), ("move", "moved"),
    ("close", "closed"), ("like", "liked"), ("arrive", "arrived"), ("hope", "hoped"), ("love", "loved"),
    ("study", "studied"), ("cry", "cried"), ("try", "tried"), ("carry", "carried"), ("hurry", "hurried"),
    ("worry", "worried"), ("copy", "copied"), ("marry", "married"),
    ("stop", "stopped"), ("plan", "planned"), ("drop", "dropped"), ("hug", "hugged"), ("clap", "clapped"),
    ("shop", "shopped"), ("rob", "robbed"), ("skip", "skipped"), ("admit", "admitted"), ("prefer", "preferred"),
    ("fix", "fixed"), ("snow", "snowed"),
    # irregular
    ("go", "went"), ("eat", "ate"), ("see", "saw"), ("take", "took"), ("write", "wrote"), ("run", "ran"),
    ("swim", "swam"), ("sing", "sang"), ("drink", "drank"), ("begin", "began"), ("give", "gave"),
    ("come", "came"), ("make", "made"), ("buy", "bought"), ("bring", "brought"), ("think", "thought"),
    ("teach", "taught"), ("catch", "caught"), ("fight", "fought"), ("sell", "sold"), ("tell", "told"),
    ("find", "found"), ("hold", "held"), ("stand", "stood"), ("speak", "spoke"), ("break", "broke"),
    ("choose", "chose"), ("drive", "drove"), ("ride", "rode"), ("fly", "flew"), ("draw", "drew"),
    ("grow", "grew"), ("know", "knew"), ("throw", "threw"), ("fall", "fell"), ("feel", "felt"),
    ("keep", "kept"), ("sleep", "slept"), ("leave", "left"), ("meet", "met"), ("send", "sent"),
    ("spend", "spent"), ("build", "built"), ("lose", "lost"), ("pay", "paid"), ("say", "said"),
    ("sit", "sat"), ("forget", "forgot"), ("win", "won"), ("hear", "heard"), ("cut", "cut"), ("put", "put"),
    ("hit", "hit"), ("hide", "hid"), ("wear", "wore"), ("steal", "stole"), ("freeze", "froze"),
    ("shake", "shook"), ("do", "did"), ("have", "had"), ("dig", "dug"), ("feed", "fed"), ("lend", "lent"),
]

ANTONYMS = [
    ("hot", "cold"), ("big", "small"), ("happy", "sad"), ("fast", "slow"), ("tall", "short"),
    ("full", "empty"), ("early", "late"), ("strong", "weak"), ("rich", "poor"), ("young", "old"),
    ("wet", "dry"), ("clean", "dirty"), ("loud", "quiet"), ("thick", "thin"), ("wide", "narrow"),
    ("deep", "shallow"), ("cheap", "expensive"), ("safe", "dangerous"), ("true", "false"), ("buy", "sell"),
    ("push", "pull"), ("above", "below"), ("inside", "outside"), ("increase", "decrease"),
    ("accept", "reject"), ("ancient", "modern"), ("asleep", "awake"), ("possible", "impossible"),
    ("remember", "forget"), ("friend", "enemy"), ("question", "answer"), ("day", "night"), ("north", "south"),
    ("east", "west"), ("first", "last"), ("top", "bottom"), ("polite", "rude"), ("smooth", "rough"),
    ("heavy", "light"), ("win", "lose"), ("arrive", "depart"), ("entrance", "exit"), ("always", "never"),
    ("maximum", "minimum"), ("visible", "invisible"), ("generous", "selfish"), ("victory", "defeat"),
    ("borrow", "lend"), ("come", "go"), ("laugh", "cry"), ("sunrise", "sunset"),
    ("summer", "winter"), ("future", "past"), ("guilty", "innocent"), ("import", "export"),
    ("include", "exclude"), ("major", "minor"), ("float", "sink"),
]

SYNONYMS = [
    ("big", "large"), ("happy", "glad"), ("fast", "quick"), ("begin", "start"), ("smart", "clever"),
    ("difficult", "hard"), ("easy", "simple"), ("choose", "pick"), ("help", "assist"), ("buy", "purchase"),
    ("correct", "right"), ("beautiful", "pretty"), ("shut", "close"), ("rich", "wealthy"), ("quiet", "silent"),
    ("gift", "present"), ("ill", "sick"), ("rock", "stone"), ("car", "automobile"), ("shout", "yell"),
    ("jump", "leap"), ("fix", "repair"), ("enormous", "huge"), ("scared", "afraid"), ("brave", "courageous"),
    ("funny", "amusing"), ("reply", "answer"), ("strange", "odd"), ("speak", "talk"), ("error", "mistake"),
    ("journey", "trip"), ("damp", "moist"), ("sleepy", "drowsy"), ("end", "finish"), ("angry", "furious"),
    ("shove", "push"), ("small", "little"), ("tired", "weary"), ("kind", "caring"), ("sad", "unhappy"),
    ("hurry", "rush"), ("fortunate", "lucky"), ("mend", "repair"), ("vanish", "disappear"), ("rapid", "swift"),
    ("cautious", "careful"), ("center", "middle"), ("job", "occupation"), ("shy", "timid"), ("famous", "well-known"),
]

# Unit pairs (bigger unit, smaller unit, how many small units make one big unit); all exact definitions.
UNITS = [  # (singular, plural) names
    (("kilometer", "kilometers"), ("meter", "meters"), 1000),
    (("meter", "meters"), ("centimeter", "centimeters"), 100),
    (("centimeter", "centimeters"), ("millimeter", "millimeters"), 10),
    (("kilogram", "kilograms"), ("gram", "grams"), 1000),
    (("liter", "liters"), ("milliliter", "milliliters"), 1000),
    (("hour", "hours"), ("minute", "minutes"), 60),
    (("minute", "minutes"), ("second", "seconds"), 60),
    (("day", "days"), ("hour", "hours"), 24),
    (("week", "weeks"), ("day", "days"), 7),
    (("year", "years"), ("month", "months"), 12),
    (("foot", "feet"), ("inch", "inches"), 12),
    (("yard", "yards"), ("foot", "feet"), 3),
    (("dollar", "dollars"), ("cent", "cents"), 100),
    (("gallon", "gallons"), ("quart", "quarts"), 4),
    (("pound", "pounds"), ("ounce", "ounces"), 16),
]

NAMES = [  # (name, subject pronoun, object pronoun, possessive)
    ("Maria", "she", "her", "her"), ("Tom", "he", "him", "his"), ("Aisha", "she", "her", "her"),
    ("Lucas", "he", "him", "his"), ("Mei", "she", "her", "her"), ("David", "he", "him", "his"),
    ("Sofia", "she", "her", "her"), ("Omar", "he", "him", "his"), ("Emma", "she", "her", "her"),
    ("Kenji", "he", "him", "his"), ("Priya", "she", "her", "her"), ("Carlos", "he", "him", "his"),
    ("Hannah", "she", "her", "her"), ("Leo", "he", "him", "his"), ("Fatima", "she", "her", "her"),
    ("Noah", "he", "him", "his"), ("Grace", "she", "her", "her"), ("Ivan", "he", "him", "his"),
    ("Zara", "she", "her", "her"), ("Samuel", "he", "him", "his"),
]
COUNTABLE_ITEMS = ["apples", "marbles", "stickers", "pencils", "cookies", "books", "stamps", "shells",
                   "cards", "balloons", "oranges", "coins", "buttons", "crayons", "postcards"]

# Active sentences for voice rewriting: (agent, past verb, past participle, object, object is plural)
VOICE_AGENTS = ["the chef", "the teacher", "my sister", "the gardener", "the mechanic", "the students",
                "the artist", "our neighbor", "the children", "the engineer", "my grandfather", "the police",
                "the baker", "the pilot", "the farmer", "the librarian"]
VOICE_ACTIONS = [  # (past, participle, object, plural?)
    ("cooked", "cooked", "the dinner", False), ("baked", "baked", "a cake", False),
    ("painted", "painted", "the fence", False), ("wrote", "written", "a letter", False),
    ("fixed", "fixed", "the broken bicycle", False), ("cleaned", "cleaned", "the kitchen", False),
    ("delivered", "delivered", "the packages", True), ("opened", "opened", "the windows", True),
    ("built", "built", "a wooden shed", False), ("broke", "broken", "the vase", False),
    ("drew", "drawn", "a map of the town", False), ("planted", "planted", "the roses", True),
    ("found", "found", "the missing keys", True), ("caught", "caught", "the ball", False),
    ("washed", "washed", "the dishes", True), ("sold", "sold", "the old piano", False),
    ("chose", "chosen", "the new colors", True), ("took", "taken", "the photographs", True),
    ("carried", "carried", "the heavy boxes", True), ("repaired", "repaired", "the roof", False),
    ("fed", "fed", "the hungry goats", True), ("read", "read", "the instructions", True),
]

CAPITALS = [  # (country as used inside a sentence, capital)
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
    ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Brazil", "Brasília"), ("Argentina", "Buenos Aires"),
    ("Mexico", "Mexico City"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Nigeria", "Abuja"),
    ("Russia", "Moscow"), ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"),
    ("Ireland", "Dublin"), ("Belgium", "Brussels"), ("Hungary", "Budapest"), ("the Czech Republic", "Prague"),
    ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Saudi Arabia", "Riyadh"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("South Korea", "Seoul"), ("the Philippines", "Manila"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Colombia", "Bogotá"), ("Cuba", "Havana"), ("Morocco", "Rabat"),
    ("Ethiopia", "Addis Ababa"), ("Ghana", "Accra"), ("New Zealand", "Wellington"),
    ("the United Kingdom", "London"), ("the United States", "Washington, D.C."), ("Pakistan", "Islamabad"),
    ("Bangladesh", "Dhaka"), ("Nepal", "Kathmandu"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"),
    ("Ukraine", "Kyiv"), ("Iceland", "Reykjavík"), ("Croatia", "Zagreb"), ("Serbia", "Belgrade"),
    ("Venezuela", "Caracas"), ("Uruguay", "Montevideo"), ("Paraguay", "Asunción"), ("Ecuador", "Quito"),
    ("Mongolia", "Ulaanbaatar"), ("Afghanistan", "Kabul"), ("Syria", "Damascus"), ("Jordan", "Amman"),
    ("Lebanon", "Beirut"), ("Tunisia", "Tunis"), ("Algeria", "Algiers"), ("Senegal", "Dakar"),
    ("Malaysia", "Kuala Lumpur"), ("Qatar", "Doha"), ("Estonia", "Tallinn"), ("Latvia", "Riga"),
    ("Lithuania", "Vilnius"), ("Slovakia", "Bratislava"), ("Slovenia", "Ljubljana"), ("Jamaica", "Kingston"),
    ("Cambodia", "Phnom Penh"), ("Uganda", "Kampala"), ("Zimbabwe", "Harare"), ("Libya", "Tripoli"),
]

ELEMENTS = [  # (element, symbol)
    ("hydrogen", "H"), ("helium", "He"), ("lithium", "Li"), ("carbon", "C"), ("nitrogen", "N"),
    ("oxygen", "O"), ("fluorine", "F"), ("neon", "Ne"), ("sodium", "Na"), ("magnesium", "Mg"),
    ("aluminum", "Al"), ("silicon", "Si"), ("phosphorus", "P"), ("sulfur", "S"), ("chlorine", "Cl"),
    ("argon", "Ar"), ("potassium", "K"), ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"), ("zinc", "Zn"),
    ("silver", "Ag"), ("tin", "Sn"), ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"), ("uranium", "U"),
    ("nickel", "Ni"), ("cobalt", "Co"), ("manganese", "Mn"), ("chromium", "Cr"), ("titanium", "Ti"),
    ("iodine", "I"), ("bromine", "Br"), ("platinum", "Pt"), ("tungsten", "W"),
]

TRANSLATIONS = {  # English -> word or phrase (nouns without article); checked against standard dictionaries
    "Spanish": [
        ("cat", "gato"), ("dog", "perro"), ("house", "casa"), ("water", "agua"), ("book", "libro"),
        ("apple", "manzana"), ("bread", "pan"), ("milk", "leche"), ("sun", "sol"), ("moon", "luna"),
        ("tree", "árbol"), ("school", "escuela"), ("table", "mesa"), ("chair", "silla"), ("window", "ventana"),
        ("door", "puerta"), ("red", "rojo"), ("blue", "azul"), ("green", "verde"), ("black", "negro"),
        ("white", "blanco"), ("one", "uno"), ("two", "dos"), ("three", "tres"), ("four", "cuatro"),
        ("five", "cinco"), ("hello", "hola"), ("thank you", "gracias"), ("goodbye", "adiós"),
        ("good morning", "buenos días"), ("good night", "buenas noches"), ("please", "por favor"),
        ("city", "ciudad"), ("sea", "mar"), ("flower", "flor"), ("horse", "caballo"), ("cheese", "queso"),
        ("family", "familia"), ("rain", "lluvia"), ("snow", "nieve"), ("day", "día"), ("night", "noche"),
        ("mother", "madre"), ("father", "padre"), ("brother", "hermano"), ("sister", "hermana"),
    ],
    "French": [
        ("cat", "chat"), ("dog", "chien"), ("house", "maison"), ("water", "eau"), ("book", "livre"),
        ("apple", "pomme"), ("bread", "pain"), ("milk", "lait"), ("sun", "soleil"), ("moon", "lune"),
        ("tree", "arbre"), ("school", "école"), ("table", "table"), ("chair", "chaise"), ("window", "fenêtre"),
        ("door", "porte"), ("red", "rouge"), ("blue", "bleu"), ("green", "vert"), ("black", "noir"),
        ("white", "blanc"), ("one", "un"), ("two", "deux"), ("three", "trois"), ("four", "quatre"),
        ("five", "cinq"), ("hello", "bonjour"), ("thank you", "merci"), ("goodbye", "au revoir"),
        ("good night", "bonne nuit"), ("please", "s'il vous plaît"), ("city", "ville"), ("sea", "mer"),
        ("flower", "fleur"), ("bird", "oiseau"), ("horse", "cheval"), ("cheese", "fromage"),
        ("family", "famille"), ("rain", "pluie"), ("snow", "neige"), ("day", "jour"), ("night", "nuit"),
        ("mother", "mère"), ("father", "père"), ("brother", "frère"), ("sister", "sœur"),
    ],
    "German": [
        ("cat", "Katze"), ("dog", "Hund"), ("house", "Haus"), ("water", "Wasser"), ("book", "Buch"),
        ("apple", "Apfel"), ("bread", "Brot"), ("milk", "Milch"), ("sun", "Sonne"), ("moon", "Mond"),
        ("tree", "Baum"), ("school", "Schule"), ("table", "Tisch"), ("chair", "Stuhl"), ("window", "Fenster"),
        ("door", "Tür"), ("red", "rot"), ("blue", "blau"), ("green", "grün"), ("black", "schwarz"),
        ("white", "weiß"), ("one", "eins"), ("two", "zwei"), ("three", "drei"), ("four", "vier"),
        ("five", "fünf"), ("hello", "hallo"), ("thank you", "danke"), ("goodbye", "auf Wiedersehen"),
        ("good morning", "guten Morgen"), ("good night", "gute Nacht"), ("please", "bitte"),
        ("city", "Stadt"), ("flower", "Blume"), ("bird", "Vogel"), ("horse", "Pferd"), ("cheese", "Käse"),
        ("family", "Familie"), ("rain", "Regen"), ("snow", "Schnee"), ("day", "Tag"), ("night", "Nacht"),
        ("mother", "Mutter"), ("father", "Vater"), ("brother", "Bruder"), ("sister", "Schwester"),
    ],
}

DEFINITIONS = [  # (word, one-sentence definition)
    ("photosynthesis", "Photosynthesis is the process by which plants use sunlight, water and carbon dioxide to make their own food and release oxygen."),
    ("evaporation", "Evaporation is the process by which a liquid turns into a gas, such as water drying up in the sun."),
    ("democracy", "Democracy is a system of government in which citizens choose their leaders by voting."),
    ("gravity", "Gravity is the force that pulls objects toward one another, such as the pull that keeps us on the ground."),
    ("habitat", "A habitat is the natural home or environment where a plant or animal lives."),
    ("volcano", "A volcano is an opening in the Earth's crust through which molten rock, ash and gases escape."),
    ("herbivore", "A herbivore is an animal that eats only plants."),
    ("carnivore", "A carnivore is an animal that eats mainly meat."),
    ("omnivore", "An omnivore is an animal that eats both plants and meat."),
    ("synonym", "A synonym is a word that means the same or nearly the same as another word."),
    ("antonym", "An antonym is a word that means the opposite of another word."),
    ("noun", "A noun is a word that names a person, place, thing or idea."),
    ("verb", "A verb is a word that describes an action, a state or an occurrence."),
    ("adjective", "An adjective is a word that describes a noun, such as 'red' or 'tall'."),
    ("peninsula", "A peninsula is a piece of land surrounded by water on three sides."),
    ("island", "An island is a piece of land completely surrounded by water."),
    ("glacier", "A glacier is a large, slowly moving mass of ice formed from compacted snow."),
    ("ecosystem", "An ecosystem is a community of living things interacting with each other and with their physical environment."),
    ("fossil", "A fossil is the preserved remains or trace of a plant or animal that lived long ago."),
    ("thermometer", "A thermometer is an instrument used to measure temperature."),
    ("telescope", "A telescope is an instrument that makes distant objects, such as stars, look closer and larger."),
    ("microscope", "A microscope is an instrument that makes very small objects look larger so they can be studied."),
    ("budget", "A budget is a plan for how much money will be earned and spent over a period of time."),
    ("biography", "A biography is the story of a person's life written by someone else."),
    ("autobiography", "An autobiography is the story of a person's life written by that person."),
    ("metaphor", "A metaphor is a figure of speech that describes something by calling it something else, such as 'time is a thief'."),
    ("simile", "A simile is a figure of speech that compares two things using 'like' or 'as'."),
    ("orbit", "An orbit is the curved path that one object in space follows around another, such as the Earth around the Sun."),
    ("mammal", "A mammal is a warm-blooded animal with hair or fur that feeds its young with milk."),
    ("reptile", "A reptile is a cold-blooded animal with scaly skin, such as a snake, lizard or turtle."),
    ("amphibian", "An amphibian is a cold-blooded animal, such as a frog, that usually lives both in water and on land."),
    ("migration", "Migration is the regular movement of animals from one region to another, often with the seasons."),
    ("erosion", "Erosion is the gradual wearing away of rock or soil by wind, water or ice."),
    ("recipe", "A recipe is a set of instructions for preparing a particular dish."),
    ("vaccine", "A vaccine is a substance that trains the immune system to protect the body against a disease."),
    ("algorithm", "An algorithm is a step-by-step set of instructions for solving a problem or completing a task."),
    ("dictionary", "A dictionary is a book or resource that lists words in alphabetical order with their meanings."),
    ("continent", "A continent is one of the Earth's seven very large land masses, such as Africa or Asia."),
    ("equator", "The equator is an imaginary line around the middle of the Earth, halfway between the North and South Poles."),
    ("archipelago", "An archipelago is a group of islands."),
    ("nocturnal", "Nocturnal describes an animal that is active at night and sleeps during the day."),
    ("transparent", "Transparent describes a material that lets light pass through so that objects behind it can be seen clearly."),
    ("predator", "A predator is an animal that hunts and eats other animals."),
    ("century", "A century is a period of one hundred years."),
    ("decade", "A decade is a period of ten years."),
]

SIMPLE_FACTS = [  # (question, answer) hand-written and checked
    ("How many days are there in a week?", "There are seven days in a week."),
    ("How many months are there in a year?", "There are twelve months in a year."),
    ("How many continents are there on Earth?", "There are seven continents on Earth."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet."),
    ("At what temperature does water boil at sea level?", "At sea level, water boils at 100 degrees Celsius."),
    ("At what temperature does water freeze?", "Water freezes at 0 degrees Celsius."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest ocean on Earth."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("How many legs does an insect have?", "An insect has six legs."),
    ("What gas do plants absorb from the air for photosynthesis?", "Plants absorb carbon dioxide from the air for photosynthesis."),
    ("What gas do humans need to breathe to stay alive?", "Humans need oxygen to stay alive."),
    ("What is the freezing point of water in Fahrenheit?", "Water freezes at 32 degrees Fahrenheit."),
    ("How many hours are there in a day?", "There are 24 hours in a day."),
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("How many sides does an octagon have?", "An octagon has eight sides."),
    ("What is the tallest mountain above sea level?", "Mount Everest is the tallest mountain above sea level."),
    ("Which animal is the largest mammal on Earth?", "The blue whale is the largest mammal on Earth."),
    ("What is the hardest natural substance?", "Diamond is the hardest natural substance."),
    ("How many players are on the field for one soccer team?", "A soccer team has eleven players on the field."),
    ("What do bees make from nectar?", "Bees make honey from nectar."),
    ("Which organ pumps blood around the human body?", "The heart pumps blood around the human body."),
    ("How many bones are in the adult human body?", "The adult human body has 206 bones."),
    ("What is the main gas in the Earth's atmosphere?", "Nitrogen is the main gas in the Earth's atmosphere."),
    ("What star is at the center of our solar system?", "The Sun is the star at the center of our solar system."),
    ("How long does it take the Earth to orbit the Sun?", "The Earth takes about 365 days to orbit the Sun."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("What is the largest desert in Africa?", "The Sahara is the largest desert in Africa."),
    ("Which is the smallest prime number?", "The smallest prime number is 2."),
    ("How many colors are in a rainbow?", "A rainbow is usually described as having seven colors."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies or moths."),
    ("What is the opposite of north on a compass?", "South is the opposite of north on a compass."),
    ("How many strings does a standard violin have?", "A standard violin has four strings."),
    ("What is the name of the natural satellite that orbits the Earth?", "The Moon is the natural satellite that orbits the Earth."),
    ("Which instrument has 88 keys?", "A standard piano has 88 keys."),
    ("How many degrees are in a right angle?", "A right angle measures 90 degrees."),
    ("How many degrees are in a full circle?", "A full circle has 360 degrees."),
    ("What is a baby cat called?", "A baby cat is called a kitten."),
    ("What is a baby dog called?", "A baby dog is called a puppy."),
    ("What is a baby sheep called?", "A baby sheep is called a lamb."),
    ("What is a baby cow called?", "A baby cow is called a calf."),
    ("What is a group of wolves called?", "A group of wolves is called a pack."),
    ("Who wrote the play 'Romeo and Juliet'?", "William Shakespeare wrote 'Romeo and Juliet'."),
    ("What is the longest river in South America?", "The Amazon is the longest river in South America."),
    ("What do you call a shape with four equal sides and four right angles?", "A shape with four equal sides and four right angles is called a square."),
    ("Which season comes after spring?", "Summer comes after spring."),
    ("How many wheels does a bicycle have?", "A bicycle has two wheels."),
    ("What is frozen water called?", "Frozen water is called ice."),
]

VOWELS = "aeiou"


# ==================================================================================================
# Phrasings: every instruction template of every family, in one registry
# ==================================================================================================


class Phrasing(NamedTuple):
    """One way of asking for a task. Slots such as ``{a}`` are filled from the item; ``input`` is the
    template of the record's ``input`` field ("" = the content sits in the instruction itself)."""

    instruction: str
    output: str
    input: str = ""


# family -> every phrasing its generator may use. tests/test_dataset.py matches each record's instruction
# against these templates to count the phrasings a family really uses (at least five).
PHRASINGS: dict[str, list[Phrasing]] = {}


def phrasings(family: str, *items: tuple) -> list[Phrasing]:
    """Register phrasings of ``family`` (instruction, output[, input]) and return them."""
    made = [Phrasing(*item) for item in items]
    PHRASINGS.setdefault(family, []).extend(made)
    return made


def spread(rng: random.Random, options: list, n: int) -> list:
    """``n`` picks from ``options``, each used about ``n / len(options)`` times, in a seeded order."""
    picks = [options[i % len(options)] for i in range(n)]
    rng.shuffle(picks)
    return picks


def fill(family: str, phrasing: Phrasing, **values) -> dict:
    output = phrasing.output.format(**values)
    if output.endswith("..") and not output.endswith("..."):  # "... Washington, D.C." or "... 4:15 p.m." ends it
        output = output[:-1]
    return rec(family, phrasing.instruction.format(**values), output, phrasing.input.format(**values))


def decap(text: str) -> str:
    """Lower-case the first letter unless the first word is a name or 'I' (a clause inside a sentence)."""
    first = text.split(" ", 1)[0].rstrip(",.")
    if first == "I" or first in PROPER_WORDS:
        return text
    return text[:1].lower() + text[1:]


def join_and(items: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def article(word: str) -> str:
    return "an" if word[0].lower() in VOWELS else "a"


NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


# ==================================================================================================
# Family generators: each returns a list of records. First the course's original 21 families.
# ==================================================================================================

SPELLING_WORD = phrasings(
    "spelling",
    ("Correct the spelling of the word '{w}'.", "The correct spelling is '{r}'."),
    ("How do you spell '{w}' correctly?", "The word is spelled '{r}'."),
    ("Fix the spelling mistake in '{w}'.", "The correctly spelled word is '{r}'."),
    ("Correct the misspelled word.", "The correct spelling is '{r}'.", "{w}"),
    ("This word is spelled wrong. What is the right spelling?", "The right spelling is '{r}'.", "{w}"),
    ("I always misspell '{w}'. Could you tell me how to write it correctly?", "It is written '{r}'."),
)
SPELLING_SENTENCE = phrasings(
    "spelling",
    ("Correct the spelling mistake in this sentence.", "{r}", "{w}"),
    ("Fix the misspelled word in the following sentence.", "{r}", "{w}"),
    ("Rewrite the sentence with correct spelling.", "{r}", "{w}"),
    ("Correct the spelling in this sentence: {w}", "{r}"),
)


def gen_spelling(rng: random.Random) -> list[dict]:
    fam = "spelling"
    out = [fill(fam, p, w=w, r=r) for (w, r), p in zip(MISSPELLINGS, spread(rng, SPELLING_WORD, len(MISSPELLINGS)))]
    out += [fill(fam, p, w=w, r=r) for (w, r), p in
            zip(SPELLING_SENTENCES, spread(rng, SPELLING_SENTENCE, len(SPELLING_SENTENCES)))]
    return out


def gen_word_pairs(rng, fam, pairs, family_phrasings):
    return [fill(fam, p, a=a, b=b) for (a, b), p in zip(pairs, spread(rng, family_phrasings, len(pairs)))]


PLURAL_PHRASINGS = phrasings(
    "plurals",
    ("What is the plural of '{a}'?", "The plural of '{a}' is '{b}'."),
    ("Write the plural form of '{a}'.", "The plural form of '{a}' is '{b}'."),
    ("Give the plural of the noun '{a}'.", "The plural of '{a}' is '{b}'."),
    ("Write the plural form of the following noun.", "The plural of '{a}' is '{b}'.", "{a}"),
    ("What is the plural of this word?", "The plural of '{a}' is '{b}'.", "{a}"),
    ("The singular is '{a}'. What word do we use when there are two or more?", "The plural of '{a}' is '{b}'."),
    ("Turn the singular noun '{a}' into its plural form.", "The plural form of '{a}' is '{b}'."),
)
PAST_PHRASINGS = phrasings(
    "past_tense",
    ("What is the past tense of '{a}'?", "The past tense of '{a}' is '{b}'."),
    ("Give the simple past form of the verb '{a}'.", "The simple past form of '{a}' is '{b}'."),
    ("Change the verb '{a}' into the past tense.", "The past tense of '{a}' is '{b}'."),
    ("Write the past tense of the following verb.", "The past tense of '{a}' is '{b}'.", "{a}"),
    ("What is the simple past form of this verb?", "The simple past form of '{a}' is '{b}'.", "{a}"),
    ("Which form of the verb '{a}' would you use to talk about yesterday?", "The past tense of '{a}' is '{b}'."),
)
ANTONYM_PHRASINGS = phrasings(
    "antonyms",
    ("What is the opposite of '{a}'?", "The opposite of '{a}' is '{b}'."),
    ("Give an antonym for '{a}'.", "An antonym of '{a}' is '{b}'."),
    ("Name a word that means the opposite of '{a}'.", "A word that means the opposite of '{a}' is '{b}'."),
    ("Provide an antonym for the following word.", "An antonym of '{a}' is '{b}'.", "{a}"),
    ("What is the opposite of this word?", "The opposite of '{a}' is '{b}'.", "{a}"),
    ("I need a word that means the reverse of '{a}'. What would you suggest?",
     "A word that means the reverse of '{a}' is '{b}'."),
)
SYNONYM_PHRASINGS = phrasings(
    "synonyms",
    ("What is a synonym for '{a}'?", "A synonym for '{a}' is '{b}'."),
    ("Give a word that means the same as '{a}'.", "A word that means the same as '{a}' is '{b}'."),
    ("Suggest another word for '{a}'.", "Another word for '{a}' is '{b}'."),
    ("Provide a synonym for the following word.", "A synonym for '{a}' is '{b}'.", "{a}"),
    ("Find a word with a similar meaning.", "A word with a similar meaning to '{a}' is '{b}'.", "{a}"),
    ("I keep using the word '{a}' in my essay. Which word could I use instead?", "Instead of '{a}', you could use '{b}'."),
)


def gen_plurals(rng):
    return gen_word_pairs(rng, "plurals", PLURALS, PLURAL_PHRASINGS)


def gen_past_tense(rng):
    return gen_word_pairs(rng, "past_tense", PAST_TENSES, PAST_PHRASINGS)


def gen_antonyms(rng):
    return gen_word_pairs(rng, "antonyms", ANTONYMS, ANTONYM_PHRASINGS)


def gen_synonyms(rng):
    return gen_word_pairs(rng, "synonyms", SYNONYMS, SYNONYM_PHRASINGS)


def unit_name(names: tuple[str, str], value: Fraction) -> str:
    return names[0] if value == 1 else names[1]


UNIT_PHRASINGS = phrasings(
    "unit_conversion",
    ("Convert {x} to {u2}.", "{answer}"),
    ("How many {u2} are in {x}?", "{answer}"),
    ("Express {x} in {u2}.", "{answer}"),
    ("Convert the following measurement to {u2}.", "{answer}", "{x}"),
    ("How many {u2} is this?", "{answer}", "{x}"),
    ("My notes say {x}, but I need the value in {u2}. What is it?", "{answer}"),
)
TEMPERATURE_PHRASINGS = phrasings(
    "unit_conversion",
    ("Convert {c} degrees Celsius to Fahrenheit.", "{c} degrees Celsius is {f} degrees Fahrenheit."),
    ("What is {f} degrees Fahrenheit in degrees Celsius?", "{f} degrees Fahrenheit is {c} degrees Celsius."),
)


def gen_unit_conversion(rng):
    fam, out = "unit_conversion", []
    items = []
    for big, small, factor in UNITS:
        # three big -> small and three small -> big conversions per unit pair, values drawn at random
        for direction in ("down", "down", "down", "up", "up", "up"):
            if direction == "down":
                x = Fraction(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25])) + rng.choice(
                    [Fraction(0), Fraction(0), Fraction(1, 2)])
                y, u1, u2 = x * factor, big, small
            else:
                y_big = Fraction(rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12])) + rng.choice([Fraction(0), Fraction(1, 2)])
                if (y_big * factor).denominator != 1:  # ask about whole numbers of the small unit only
                    y_big = Fraction(math.floor(y_big))
                x, y, u1, u2 = y_big * factor, y_big, small, big
            x_text = f"{fmt_number(x)} {unit_name(u1, x)}"
            items.append(dict(x=x_text, u2=u2[1], answer=cap(f"{x_text} is {fmt_number(y)} {unit_name(u2, y)}.")))
    out += [fill(fam, p, **v) for v, p in zip(items, spread(rng, UNIT_PHRASINGS, len(items)))]
    # temperatures: Celsius <-> Fahrenheit with whole-number answers
    for c in rng.sample(list(range(-20, 105, 5)), 8):
        out.append(fill(fam, TEMPERATURE_PHRASINGS[0], c=c, f=fmt_number(Fraction(c * 9, 5) + 32)))
    for k in rng.sample(list(range(-4, 24)), 6):
        f = 32 + 9 * k
        out.append(fill(fam, TEMPERATURE_PHRASINGS[1], f=f, c=fmt_number(Fraction(f - 32) * 5 / 9)))
    return out


ARITHMETIC_PHRASINGS = phrasings(
    "arithmetic",
    ("What is {a} {w} {b}?", "{a} {w} {b} is {c}."),
    ("Calculate {a} {w} {b}.", "{a} {w} {b} is {c}."),
    ("Solve the following calculation.", "{ra} {sym} {rb} = {rc}, so the answer is {c}.", "{ra} {sym} {rb}"),
    ("What does this come to?", "It comes to {c}.", "{ra} {sym} {rb}"),
    ("I'm checking my homework. Could you tell me what {a} {w} {b} equals?", "{a} {w} {b} equals {c}."),
)
ARITHMETIC_VERBS = dict(zip("+-*/", phrasings(  # one imperative per operation
    "arithmetic",
    ("Add {a} and {b}.", "The result is {c}."),
    ("Subtract {b} from {a}.", "The result is {c}."),
    ("Multiply {a} by {b}.", "The result is {c}."),
    ("Divide {a} by {b}.", "The result is {c}."),
)))
PERCENT_PHRASINGS = phrasings(
    "arithmetic",
    ("What is {p}% of {n}?", "{p}% of {n} is {v}."),
    ("Find {p}% of {n}.", "{p}% of {n} is {v}."),
)


def gen_arithmetic(rng):
    fam, out = "arithmetic", []
    words = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
    symbols = {"+": "+", "-": "-", "*": "×", "/": "÷"}
    picks = spread(rng, ARITHMETIC_PHRASINGS + [None], 104)  # None: the operation's own imperative
    for i in range(104):
        op = ["+", "-", "*", "/"][i % 4]
        if op == "+":
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            c = a + b
        elif op == "-":
            a, b = rng.randint(20, 999), rng.randint(2, 400)
            if b > a:
                a, b = b, a
            c = a - b
        elif op == "*":
            a, b = rng.randint(2, 99), rng.randint(2, 20)
            c = a * b
        else:
            b, c = rng.randint(2, 20), rng.randint(2, 60)
            a = b * c
        values = dict(a=fmt_int(a), b=fmt_int(b), c=fmt_int(c), ra=a, rb=b, rc=c, w=words[op], sym=symbols[op])
        out.append(fill(fam, picks[i] or ARITHMETIC_VERBS[op], **values))
    percents = spread(rng, PERCENT_PHRASINGS, 14)
    for i in range(14):
        p = rng.choice([10, 20, 25, 50, 75, 5, 40])
        n = rng.choice([20, 40, 60, 80, 100, 120, 200, 300, 400, 500, 640, 800])
        value = Fraction(p * n, 100)
        if value.denominator == 1:
            out.append(fill(fam, percents[i], p=p, n=n, v=fmt_number(value)))
    return out


WORD_PROBLEMS = [
    # (instruction template, answer template, answer function); {N} name, {p} pronoun, {P} capitalised
    ("{N} has {a} {items}. {P} buys {b} more. How many {items} does {p} have now?",
     "{N} has {ans} {items} now.", lambda a, b, c: a + b),
    ("{N} had {a} {items} and gave {b} of them to a friend. How many {items} does {p} have left?",
     "{N} has {ans} {items} left.", lambda a, b, c: a - b),
    ("A box holds {a} {items}. How many {items} are in {b} boxes?",
     "There are {ans} {items} in {b} boxes.", lambda a, b, c: a * b),
    ("{N} shares {ab} {items} equally among {b} friends. How many {items} does each friend get?",
     "Each friend gets {ans} {items}.", lambda a, b, c: a),
    ("A ticket to the museum costs {a} dollars. How much do {b} tickets cost?",
     "Together, {b} tickets cost {ans} dollars.", lambda a, b, c: a * b),
    ("{N} reads {a} pages every day. How many pages does {p} read in {b} days?",
     "{N} reads {ans} pages in {b} days.", lambda a, b, c: a * b),
    ("A bus has {a} passengers. At the next stop, {b} people get off and {c} people get on. How many passengers are on the bus now?",
     "There are {ans} passengers on the bus now.", lambda a, b, c: a - b + c),
    ("{N} saved {a} dollars in January and {b} dollars in February. How much did {p} save in total?",
     "{N} saved {ans} dollars in total.", lambda a, b, c: a + b),
    ("A train travels at {a} kilometers per hour. How far does it travel in {b} hours?",
     "The train travels {ans} kilometers in {b} hours.", lambda a, b, c: a * b),
    ("{N} is {a} years old. How old will {p} be in {b} years?",
     "{N} will be {ans} years old in {b} years.", lambda a, b, c: a + b),
    ("A baker made {a} muffins in the morning and {b} muffins in the afternoon. How many muffins did the baker make?",
     "The baker made {ans} muffins.", lambda a, b, c: a + b),
    ("A garden has {a} rows of plants with {b} plants in each row. How many plants are in the garden?",
     "There are {ans} plants in the garden.", lambda a, b, c: a * b),
    ("{N} ran {a} laps on Monday and {b} laps on Tuesday. How many laps did {p} run altogether?",
     "Altogether, {N} ran {ans} laps.", lambda a, b, c: a + b),
    ("There were {a} birds on a fence. Then {b} flew away. How many birds are still on the fence?",
     "There are {ans} birds still on the fence.", lambda a, b, c: a - b),
    ("A class of {a} students splits into groups of {b}, with {c} students left over. How many full groups are there?",
     "There are {ans} full groups.", None),
    ("{N} buys {b} notebooks that cost {a} dollars each and pays with a {bill}-dollar bill. How much change does {p} get?",
     "{N} gets {ans} dollars in change.", None),
    ("A library had {a} books and received {b} boxes of new books with {c} books in each box. How many books does it have now?",
     "The library now has {ans} books.", lambda a, b, c: a + b * c),
    ("{N} picked {a} strawberries and ate {b} of them on the way home. How many strawberries were left?",
     "{N} had {ans} strawberries left.", lambda a, b, c: a - b),
    ("A water tank holds {a} liters. If {b} liters are used each day, how many liters are left after {c} days?",
     "After {c} days, {ans} liters are left in the tank.", None),
    ("Each of {b} shelves holds {a} jars. How many jars are on the shelves in total?",
     "The shelves hold {ans} jars in total.", lambda a, b, c: a * b),
]
WORD_PROBLEM_PHRASINGS = phrasings(
    "word_problems",
    ("{problem}", "{answer}"),
    ("Solve this word problem.", "{answer}", "{problem}"),
    ("Read the problem and answer it in a full sentence.", "{answer}", "{problem}"),
    ("Solve the following problem: {problem}", "{answer}"),
    ("Here is a word problem from a math class. {problem} Please give the answer in one sentence.", "{answer}"),
)


def gen_word_problems(rng):
    fam, out = "word_problems", []
    picks = spread(rng, WORD_PROBLEM_PHRASINGS, 100)
    for i in range(100):
        template, answer_template, fn = WORD_PROBLEMS[i % len(WORD_PROBLEMS)]
        name, pronoun, _, _ = rng.choice(NAMES)
        items = rng.choice(COUNTABLE_ITEMS)
        a, b, c = rng.randint(12, 60), rng.randint(2, 11), rng.randint(2, 9)
        values = dict(N=name, p=pronoun, P=cap(pronoun), items=items, a=a, b=b, c=c, ab=a * b)
        if "years old" in template:
            values["a"] = a = rng.randint(6, 40)
        if "kilometers per hour" in template:
            values["a"] = a = rng.choice([40, 50, 60, 70, 80, 90, 100, 120])
        if "groups of" in template:  # a students = groups * b + c, with c < b
            groups = rng.randint(3, 8)
            c = rng.randint(1, b - 1)
            values.update(a=groups * b + c, c=c, ans=groups)
        elif "change" in template:  # b notebooks at a dollars each, paid with the next bill up
            a, b = rng.randint(2, 9), rng.randint(2, 5)
            bill = next(x for x in (20, 50, 100) if x > a * b)
            values.update(a=a, b=b, bill=bill, ans=bill - a * b)
        elif "water tank" in template:
            b, c = rng.choice([5, 10, 15, 20, 25]), rng.randint(2, 9)
            a = b * c + rng.choice([10, 20, 50, 100])
            values.update(a=a, b=b, c=c, ans=a - b * c)
        else:
            values["ans"] = fn(a, b, c)
        out.append(fill(fam, picks[i], problem=template.format(**values), answer=answer_template.format(**values)))
    return out


TO_PASSIVE = phrasings(
    "voice",
    ("Rewrite the sentence in the passive voice.", "{passive}", "{active}"),
    ("Change this sentence from active to passive voice.", "{passive}", "{active}"),
    ("Convert the following sentence into the passive voice.", "{passive}", "{active}"),
    ("Rewrite in the passive voice: {active}", "{passive}"),
    ('How would you say "{active0}" in the passive voice?', "{passive}"),
)
TO_ACTIVE = phrasings(
    "voice",
    ("Rewrite the sentence in the active voice.", "{active}", "{passive}"),
    ("Change this sentence from passive to active voice.", "{active}", "{passive}"),
    ("Convert the following sentence into the active voice.", "{active}", "{passive}"),
    ("Who did the action? Put this sentence into the active voice so that it starts with the doer: {passive}",
     "{active}"),
    ('What is "{passive0}" in the active voice?', "{active}"),
)


def gen_voice(rng):
    fam, out = "voice", []
    pairs = [(agent, action) for agent in VOICE_AGENTS for action in VOICE_ACTIONS]
    chosen = rng.sample(pairs, 62)
    to_passive, to_active = spread(rng, TO_PASSIVE, len(chosen)), spread(rng, TO_ACTIVE, len(chosen))
    for i, (agent, (past, participle, obj, plural)) in enumerate(chosen):
        active = f"{cap(agent)} {past} {obj}."
        passive = f"{cap(obj)} {'were' if plural else 'was'} {participle} by {agent}."
        p = to_passive[i] if rng.random() < 0.6 else to_active[i]
        out.append(fill(fam, p, active=active, passive=passive, active0=active[:-1], passive0=passive[:-1]))
    return out


SUMMARY_SLOTS = {
    "place": [("the city museum", "looking at old paintings"), ("the science center", "trying the hands-on experiments"),
              ("the aquarium", "watching the sharks and sea turtles"), ("the botanical garden", "walking among the tropical plants"),
              ("the history museum", "reading about ancient Egypt"), ("the zoo", "watching the elephants being fed")],
    "souvenir": ["a postcard", "a small poster", "a keychain", "a notebook", "a picture book"],
    "relative": ["her brother", "his sister", "their grandmother", "a friend", "a cousin"],
    "club": ["chess club", "school choir", "local library", "gardening club", "drama group", "football team"],
    "event": ["bake sale", "open day", "charity concert", "book fair", "spring festival"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "weather": ["snow", "rain", "wind"],
    "town": ["Millbrook", "Ashford", "Riverton", "Stonebridge", "Greenvale", "Oakley"],
    "company": ["Brightline", "Northwind", "Pebble Labs", "Lumen", "Cedar Tech"],
    "product": [("phone", "has a larger screen", "lasts two days on one charge"),
                ("laptop", "weighs less than a kilogram", "starts in a few seconds"),
                ("electric bike", "can travel 80 kilometers on one charge", "folds to fit in a car"),
                ("smartwatch", "tracks sleep and heart rate", "is waterproof"),
                ("vacuum cleaner", "runs quietly", "empties itself")],
    "month": ["March", "April", "May", "June", "September", "October"],
    "pet": ["cat", "dog", "rabbit", "tortoise", "parrot"],
    "spot": [("in a neighbor's shed"), ("under the porch"), ("inside a laundry basket"), ("behind the garden wall")],
}
SUMMARY_PHRASINGS = phrasings(
    "summaries",
    ("Summarize the following text in one sentence.", "{summary}", "{passage}"),
    ("Write a one-sentence summary of this passage.", "{summary}", "{passage}"),
    ("Give a short, one-sentence summary of the text.", "{summary}", "{passage}"),
    ("Sum up this paragraph in a single sentence.", "{summary}", "{passage}"),
    ("What is the main point of this passage? Answer in one sentence.", "{summary}", "{passage}"),
    ("Summarize in one sentence: {passage}", "{summary}"),
    ("Can you tell me in one sentence what this text is about? {passage}", "{summary}"),
    ("Could you summarize this passage in a single sentence?", "{summary}", "{passage}"),
)


def gen_summaries(rng):
    fam, out = "summaries", []
    s = SUMMARY_SLOTS
    picks = spread(rng, SUMMARY_PHRASINGS, 50)
    for i in range(50):
        kind = i % 5
        name, pronoun, _, _ = rng.choice(NAMES)
        if kind == 0:
            place, activity = rng.choice(s["place"])
            souvenir, relative = rng.choice(s["souvenir"]), rng.choice(["a friend", "a cousin", "a neighbor"])
            passage = (f"{name} visited {place} last weekend. {cap(pronoun)} spent most of the day {activity}. "
                       f"Before leaving, {pronoun} bought {souvenir} for {relative}.")
            summary = f"{name} spent a day at {place} {activity} and bought {souvenir} for {relative}."
        elif kind == 1:
            club, event, day = rng.choice(s["club"]), rng.choice(s["event"]), rng.choice(s["weekday"])
            n = rng.choice([50, 80, 100, 150, 200, 300])
            passage = (f"The {club} held its {event} on {day}. More than {n} people came, and everyone enjoyed "
                       f"the afternoon. The organizers plan to hold the {event} again next year.")
            summary = f"The {club}'s {event} on {day} drew more than {n} people and will be held again next year."
        elif kind == 2:
            weather, town = rng.choice(s["weather"]), rng.choice(s["town"])
            day, later = (s["weekday"][k] for k in sorted(rng.sample(range(5), 2)))  # conditions improve later in the week
            heavy = {"snow": "Heavy snow", "rain": "Heavy rain", "wind": "Strong winds"}[weather]
            passage = (f"{heavy} hit {town} on {day}. Several roads were closed, and some schools sent students home "
                       f"early. Officials expect conditions to improve by {later}.")
            summary = f"{heavy} closed roads in {town} on {day}, but conditions should improve by {later}."
        elif kind == 3:
            company = rng.choice(s["company"])
            product, f1, f2 = rng.choice(s["product"])
            price, month = rng.choice([99, 149, 199, 249, 399, 599]), rng.choice(s["month"])
            passage = (f"{company} has announced a new {product}. The {product} {f1} and {f2}. "
                       f"It will cost {price} dollars and goes on sale in {month}.")
            summary = f"{company}'s new {product}, which {f1} and {f2}, goes on sale in {month} for {price} dollars."
        else:
            pet, day, spot = rng.choice(s["pet"]), rng.choice(s["weekday"]), rng.choice(s["spot"])
            hours = rng.choice(["two", "three", "four", "five"])
            passage = (f"{name}'s {pet} went missing on {day} evening. Neighbors searched the street for "
                       f"{hours} hours without any luck. The next morning, the {pet} was found asleep {spot}.")
            summary = f"{name}'s missing {pet} was found asleep {spot} the morning after it disappeared."
        out.append(fill(fam, picks[i], summary=summary, passage=passage))
    return out


SENTIMENT_PARTS = {
    "subject": ["this blender", "the new speaker", "this backpack", "the hotel", "this movie", "the restaurant",
                "this novel", "the delivery service", "this coffee machine", "the museum tour", "this phone case",
                "the yoga class", "this board game", "the train journey", "this desk lamp"],
    "positive": ["exceeded all of my expectations", "was worth every penny", "made my week so much better",
                 "was a delight from start to finish", "impressed the whole family",
                 "was even better than I had hoped", "turned out to be a wonderful surprise"],
    "positive_tail": ["I would happily recommend it.", "I would choose it again without a second thought.",
                      "Five stars from me.", "I am very glad I chose it.", "Everyone should try it."],
    "negative": ["was a complete waste of money", "was much worse than advertised", "left me very disappointed",
                 "was a frustrating experience from start to finish", "fell far short of what was promised",
                 "ruined my whole weekend", "was not worth half the price"],
    "negative_tail": ["I would not recommend it.", "I want my money back.", "Never again.",
                      "Save yourself the trouble.", "One star is too generous."],
}
SENTIMENT_PHRASINGS = phrasings(
    "sentiment",
    ("Classify the sentiment of this review as positive or negative.", "{answer}", "{review}"),
    ("Is the following review positive or negative?", "{answer}", "{review}"),
    ("Determine whether the sentiment of the text is positive or negative.", "{answer}", "{review}"),
    ("Label the review's sentiment as positive or negative.", "{answer}", "{review}"),
    ('Review: "{review}" Is this review positive or negative?', "{answer}"),
    ("Does the customer who wrote this sound happy or unhappy? {review}", "{mood}"),
)


def gen_sentiment(rng):
    fam, out = "sentiment", []
    p = SENTIMENT_PARTS
    picks = spread(rng, SENTIMENT_PHRASINGS, 64)
    for i in range(64):
        label = "positive" if i % 2 == 0 else "negative"
        subject = rng.choice(p["subject"])
        review = f"{cap(subject)} {rng.choice(p[label])}. {rng.choice(p[label + '_tail'])}"
        answer = rng.choice([f"The sentiment of the review is {label}.", f"The review is {label}."])
        mood = f"The customer sounds {'happy' if label == 'positive' else 'unhappy'}, so the review is {label}."
        out.append(fill(fam, picks[i], review=review, answer=answer, mood=mood))
    return out


TRANSLATION_PHRASINGS = phrasings(
    "translation",
    ('Translate "{e}" into {lang}.', "{answer}"),
    ('How do you say "{e}" in {lang}?', "{answer}"),
    ('What is the {lang} word for "{e}"?', "{answer}"),
    ("Translate the following English word or phrase into {lang}.", "{answer}", "{e}"),
    ('Give the {lang} translation of "{e}".', "{answer}"),
    ('What is "{e}" in {lang}?', "{answer}"),
)


def gen_translation(rng):
    fam, out = "translation", []
    for language, pairs in TRANSLATIONS.items():
        for (english, foreign), p in zip(pairs, spread(rng, TRANSLATION_PHRASINGS, len(pairs))):
            out.append(fill(fam, p, e=english, lang=language, answer=f'In {language}, "{english}" is "{foreign}".'))
    return out


CAPITAL_OF = phrasings(
    "capitals",
    ("What is the capital of {c}?", "The capital of {c} is {k}."),
    ("Name the capital city of {c}.", "The capital of {c} is {k}."),
    ("Which city is the capital of {c}?", "The capital of {c} is {k}."),
    ("What is the capital of this country?", "The capital of {c} is {k}.", "{C}"),
    ("I am planning a trip to {c}. Which city is its capital?", "The capital of {c} is {k}."),
)
COUNTRY_OF = phrasings(
    "capitals",
    ("{k} is the capital of which country?", "{k} is the capital of {c}."),
    ("Which country has {k} as its capital?", "{k} is the capital of {c}."),
    ("Name the country whose capital is the city below.", "{k} is the capital of {c}.", "{k}"),
)


def gen_capitals(rng):
    fam, out = "capitals", []
    forward, backward = spread(rng, CAPITAL_OF, len(CAPITALS)), spread(rng, COUNTRY_OF, len(CAPITALS))
    for i, (country, capital) in enumerate(CAPITALS):
        out.append(fill(fam, forward[i], c=country, C=cap(country), k=capital))
        if rng.random() < 0.4:
            out.append(fill(fam, backward[i], c=country, k=capital))
    return out


SYMBOL_OF = phrasings(
    "chemical_symbols",
    ("What is the chemical symbol for {e}?", "The chemical symbol for {e} is {s}."),
    ("Give the chemical symbol of {e}.", "The chemical symbol for {e} is {s}."),
    ("Which symbol represents {e} on the periodic table?", "The chemical symbol for {e} is {s}."),
    ("Write the chemical symbol of this element.", "The chemical symbol for {e} is {s}.", "{e}"),
)
ELEMENT_OF = phrasings(
    "chemical_symbols",
    ("Which element has the chemical symbol {s}?", "The symbol {s} stands for {e}."),
    ("What element does the symbol {s} stand for?", "The symbol {s} stands for {e}."),
    ("Name the element with the chemical symbol given below.", "The symbol {s} stands for {e}.", "{s}"),
)


def gen_chemical_symbols(rng):
    fam, out = "chemical_symbols", []
    forward, backward = spread(rng, SYMBOL_OF, len(ELEMENTS)), spread(rng, ELEMENT_OF, len(ELEMENTS))
    for i, (element, symbol) in enumerate(ELEMENTS):
        out.append(fill(fam, forward[i], e=element, s=symbol))
        out.append(fill(fam, backward[i], e=element, s=symbol))
    return out


DEFINITION_PHRASINGS = phrasings(
    "definitions",
    ("Define '{w}'.", "{d}"),
    ("What does '{w}' mean?", "{d}"),
    ("Give a short definition of '{w}'.", "{d}"),
    ("What is the meaning of the word '{w}'?", "{d}"),
    ("Define the following word.", "{d}", "{w}"),
    ("Explain what this word means.", "{d}", "{w}"),
    ("I came across the word '{w}' in a book. What does it mean?", "{d}"),
)


def gen_definitions(rng):
    return [fill("definitions", p, w=w, d=d)
            for (w, d), p in zip(DEFINITIONS, spread(rng, DEFINITION_PHRASINGS, len(DEFINITIONS)))]


def third_person(verb: str) -> str:
    if verb in ("have",):
        return "has"
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in VOWELS:
        return verb[:-1] + "ies"
    return verb + "s"


GRAMMAR_SUBJECTS = ["My brother", "The doctor", "She", "He", "Our teacher", "My uncle", "My aunt", "The old man",
                    "Every student", "The manager", "My cousin", "The neighbor"]
GRAMMAR_ACTIONS = [("walk", "to the park every morning"), ("play", "the piano after dinner"),
                   ("cook", "dinner for the whole family"), ("watch", "the news every evening"),
                   ("wash", "the car on Sundays"), ("fix", "old radios in the garage"),
                   ("carry", "an umbrella on rainy days"), ("study", "in the library after work"),
                   ("drink", "green tea with lemon"), ("go", "to bed early on weekdays"),
                   ("have", "a big breakfast every day"), ("buy", "fresh bread from the market"),
                   ("finish", "work at five o'clock"), ("worry", "about the weather too much")]
PLURAL_SUBJECTS = ["The children", "My parents", "The players", "Our guests", "The nurses", "The workers",
                   "The students", "My friends"]
WAS_COMPLEMENTS = ["playing in the garden", "waiting outside the station", "singing in the hall",
                   "late for the meeting", "tired after the long trip", "happy with the results",
                   "sitting by the window", "excited about the holiday"]
AN_NOUNS = ["apple", "orange", "egg", "umbrella", "elephant", "owl", "octopus", "igloo", "island", "ant",
            "eagle", "envelope"]
AN_FRAMES = ["She drew a {n} in her notebook.", "He pointed to a {n} in the picture.",
             "The book has a {n} on its cover.", "There is a {n} on the poster.", "My sister painted a {n} yesterday."]
AN_EXTRA = [("We waited for a hour at the station.", "We waited for an hour at the station."),
            ("It was a honest mistake.", "It was an honest mistake."),
            ("She is a honorary member of the club.", "She is an honorary member of the club."),
            ("He wore an uniform to work.", "He wore a uniform to work."),
            ("They live in an European city.", "They live in a European city."),
            ("It is an useful tool.", "It is a useful tool.")]
GRAMMAR_PHRASINGS = phrasings(
    "grammar",
    ("Correct the grammar in this sentence.", "{right}", "{wrong}"),
    ("Fix the grammatical error in the following sentence.", "{right}", "{wrong}"),
    ("Rewrite the sentence so that it is grammatically correct.", "{right}", "{wrong}"),
    ("Edit this sentence to correct the grammar.", "{right}", "{wrong}"),
    ("Fix the grammar: {wrong}", "{right}"),
    ("Is this sentence grammatically correct? If not, correct it: {wrong}", "No, it is not. The correct sentence is: {right}"),
    ("Can you correct the grammar of this sentence?", "{right}", "{wrong}"),
)


def gen_grammar(rng):
    fam, items = "grammar", []
    pairs = [(s, a) for s in GRAMMAR_SUBJECTS for a in GRAMMAR_ACTIONS]
    for subject, (verb, rest) in rng.sample(pairs, 34):
        items.append((f"{subject} {verb} {rest}.", f"{subject} {third_person(verb)} {rest}."))
    was_pairs = [(s, c) for s in PLURAL_SUBJECTS for c in WAS_COMPLEMENTS]
    for subject, complement in rng.sample(was_pairs, 12):
        items.append((f"{subject} was {complement}.", f"{subject} were {complement}."))
    an_pairs = [(n, f) for n in AN_NOUNS for f in AN_FRAMES]
    for noun, frame in rng.sample(an_pairs, 10):
        wrong = frame.format(n=noun)
        items.append((wrong, wrong.replace(f" a {noun}", f" an {noun}")))
    items += AN_EXTRA
    return [fill(fam, p, wrong=w, right=r) for (w, r), p in zip(items, spread(rng, GRAMMAR_PHRASINGS, len(items)))]


SORT_WORDS = sorted({w for pairs in (PLURALS, PAST_TENSES, ANTONYMS, SYNONYMS) for pair in pairs for w in pair
                     if w.isalpha() and w.islower() and len(w) >= 3})
ALPHABETICAL_PHRASINGS = phrasings(
    "alphabetical_order",
    ("Sort these words in alphabetical order.", "In alphabetical order, the words are: {sorted}.", "{words}"),
    ("Put the following words in alphabetical order.", "In alphabetical order, the words are: {sorted}.", "{words}"),
    ("Arrange the words alphabetically.", "In alphabetical order, the words are: {sorted}.", "{words}"),
    ("List these words from A to Z.", "In alphabetical order, the words are: {sorted}.", "{words}"),
    ("Put these words in alphabetical order: {words}.", "In alphabetical order, the words are: {sorted}."),
    ("In what order would these words appear in a dictionary: {words}?",
     "In a dictionary, the words appear in this order: {sorted}."),
)


def gen_alphabetical(rng):
    fam, out = "alphabetical_order", []
    for p in spread(rng, ALPHABETICAL_PHRASINGS, 42):
        words = rng.sample(SORT_WORDS, rng.randint(4, 7))
        out.append(fill(fam, p, words=", ".join(words), sorted=", ".join(sorted(words))))
    return out


SORT_UP = phrasings(
    "number_sorting",
    ("Sort these numbers from smallest to largest.", "From smallest to largest, the numbers are: {up}.", "{numbers}"),
    ("Arrange the numbers in ascending order.", "From smallest to largest, the numbers are: {up}.", "{numbers}"),
    ("Put the following numbers in increasing order.", "From smallest to largest, the numbers are: {up}.", "{numbers}"),
    ("Sort from smallest to largest: {numbers}", "From smallest to largest, the numbers are: {up}."),
    ("Here is a list of numbers. Please put them in order, starting with the smallest one and ending with the largest.",
     "From smallest to largest, the numbers are: {up}.", "{numbers}"),
)
SORT_DOWN = phrasings(
    "number_sorting",
    ("Sort these numbers from largest to smallest.", "From largest to smallest, the numbers are: {down}.", "{numbers}"),
    ("Arrange the numbers in descending order.", "From largest to smallest, the numbers are: {down}.", "{numbers}"),
    ("Put the following numbers in decreasing order.", "From largest to smallest, the numbers are: {down}.", "{numbers}"),
    ("Can you list {numbers} in descending order?", "From largest to smallest, the numbers are: {down}."),
)


def gen_number_sorting(rng):
    fam, out = "number_sorting", []
    up, down = spread(rng, SORT_UP, 42), spread(rng, SORT_DOWN, 42)
    for i in range(42):
        numbers = rng.sample(range(1, 1000), rng.randint(4, 8))
        p = up[i] if rng.random() < 0.5 else down[i]
        out.append(fill(fam, p, numbers=", ".join(map(str, numbers)), up=", ".join(map(str, sorted(numbers))),
                        down=", ".join(map(str, sorted(numbers, reverse=True)))))
    return out


COUNT_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "We planted three apple trees in the garden.",
    "My grandmother bakes bread every Sunday morning.", "The library closes early on public holidays.",
    "Please remember to turn off the lights.", "A small boat sailed slowly across the calm lake.",
    "Our class visited the science museum last Friday.", "The children laughed at the funny clown.",
    "Rain is expected later this afternoon.", "He forgot his umbrella at the station again.",
    "Fresh vegetables are sold at the market on Saturdays.", "The old bridge was repaired last summer.",
    "She writes a short poem every night before bed.", "Cats usually sleep for many hours each day.",
    "The train to the coast leaves at nine.", "Bright stars filled the clear night sky.",
    "Mix the flour and sugar in a large bowl.", "The museum guide told us about the ancient coins.",
    "Two swans glided past the wooden pier.", "Never leave a campfire burning overnight.",
]
COUNT_LETTERS = phrasings(
    "counting",
    ("How many letters are in the word '{w}'?", "The word '{w}' has {n} letter{s}."),
    ("Count the letters in '{w}'.", "The word '{w}' has {n} letter{s}."),
    ("How many letters does this word have?", "The word '{w}' has {n} letter{s}.", "{w}"),
)
COUNT_VOWELS = phrasings(
    "counting",
    ("How many vowels (a, e, i, o, u) are in the word '{w}'?", "The word '{w}' has {n} vowel{s}."),
    ("Count the vowels (a, e, i, o, u) in the following word.", "The word '{w}' has {n} vowel{s}.", "{w}"),
)
COUNT_WORDS = phrasings(
    "counting",
    ("Count the words in this sentence.", "The sentence has {n} words.", "{w}"),
    ("How many words are in the following sentence?", "The sentence has {n} words.", "{w}"),
    ("Count the words in this sentence: {w}", "The sentence has {n} words."),
)


def gen_counting(rng):
    fam, out = "counting", []
    words = rng.sample(SORT_WORDS, 44)
    letters, vowels = spread(rng, COUNT_LETTERS, 22), spread(rng, COUNT_VOWELS, 22)
    for i, word in enumerate(words):
        if i % 2 == 0:
            n, p = len(word), letters[i // 2]
        else:
            n, p = sum(ch in VOWELS for ch in word), vowels[i // 2]
        out.append(fill(fam, p, w=word, n=n, s="" if n == 1 else "s"))
    for sentence, p in zip(COUNT_SENTENCES, spread(rng, COUNT_WORDS, len(COUNT_SENTENCES))):
        out.append(fill(fam, p, w=sentence, n=len(sentence.split())))
    return out


def smallest_factor(n: int) -> int:
    for d in range(2, math.isqrt(n) + 1):
        if n % d == 0:
            return d
    return n


def prime_answer(n: int) -> str:
    d = smallest_factor(n)
    return f"Yes, {n} is a prime number." if d == n else f"No, {n} is not a prime number because it is divisible by {d}."


ODD_EVEN = phrasings(
    "number_facts",
    ("Is {n} an odd or an even number?", "{n} is an {parity} number."),
    ("Tell me whether {n} is odd or even.", "{n} is an {parity} number."),
    ("Is this number odd or even?", "{n} is an {parity} number.", "{n}"),
    ("My little sister asked me whether {n} is an odd number or an even number. What should I tell her?",
     "{n} is an {parity} number."),
)
PRIME = phrasings(
    "number_facts",
    ("Is {n} a prime number?", "{answer}"),
    ("Decide whether the following number is prime.", "{answer}", "{n}"),
)
COMPARE = phrasings(
    "number_facts",
    ("Which number is larger, {a} or {b}?", "{big} is larger than {small}."),
    ("Which number is smaller, {a} or {b}?", "{small} is smaller than {big}."),
)


def gen_number_facts(rng):
    fam, out = "number_facts", []
    used: list[int] = []
    odd_even, prime, compare = spread(rng, ODD_EVEN, 32), spread(rng, PRIME, 32), spread(rng, COMPARE, 32)
    for i in range(96):
        kind = i % 3
        if kind == 0:
            n = rng.randint(2, 999)
            out.append(fill(fam, odd_even[i // 3], n=n, parity="even" if n % 2 == 0 else "odd"))
        elif kind == 1:
            n = rng.randint(11, 199)
            while n in used:
                n = rng.randint(11, 199)
            used.append(n)
            out.append(fill(fam, prime[i // 3], n=n, answer=prime_answer(n)))
        else:
            a, b = rng.sample(range(1, 1000), 2)
            out.append(fill(fam, compare[i // 3], a=a, b=b, big=max(a, b), small=min(a, b)))
    return out


SIMPLE_FACT_PHRASINGS = phrasings(
    "simple_facts",
    ("{q}", "{a}"),
    ("Answer the following question.", "{a}", "{q}"),
    ("Answer this question in one sentence: {q}", "{a}"),
    ("Please answer the question below with a complete sentence.", "{a}", "{q}"),
    ("Quick question: {q}", "{a}"),
)


def gen_simple_facts(rng):
    return [fill("simple_facts", p, q=q, a=a)
            for (q, a), p in zip(SIMPLE_FACTS, spread(rng, SIMPLE_FACT_PHRASINGS, len(SIMPLE_FACTS)))]


# ==================================================================================================
# The families added in issue 13: more kinds of task, each asked in at least five ways
# ==================================================================================================

# -- sentences about people: questions, negatives, future tense --------------------------------------

PEOPLE = [  # (subject, plural?) adults, so every action below fits every subject
    ("Maria", False), ("Tom", False), ("Aisha", False), ("Lucas", False), ("Mei", False), ("David", False),
    ("Grace", False), ("Omar", False), ("my brother", False), ("your sister", False), ("the new teacher", False),
    ("our neighbor", False), ("my grandmother", False), ("the coach", False),
    ("my parents", True), ("our neighbors", True), ("they", True), ("your friends", True), ("the nurses", True),
    ("my cousins", True),
]
BE_COMPLEMENTS = ["busy this afternoon", "at the station", "ready for the trip", "late for the meeting",
                  "at home today", "in the garden", "tired after work", "happy with the results"]
CAN_ACTIONS = ["speak three languages", "ride a horse", "play the violin", "swim across the lake",
               "cook Thai food", "drive a truck"]
WILL_ACTIONS = ["arrive before noon", "join us for dinner", "call you tonight", "bring the drinks"]
PERFECT_ACTIONS = [("finished", "the report"), ("seen", "this film before"), ("visited", "Japan twice"),
                   ("written", "three books"), ("painted", "the kitchen")]
PRESENT_ACTIONS = [  # (base verb, rest): habits, so they read right in the present and the future
    ("live", "near the river"), ("work", "at the hospital"), ("play", "chess on Fridays"), ("drive", "to work"),
    ("speak", "French at home"), ("teach", "math at the high school"), ("walk", "the dog after dinner"),
    ("watch", "the news in the evening"), ("read", "the newspaper every morning"), ("bake", "bread on Saturdays"),
    ("study", "in the library"), ("wash", "the car on Sundays"), ("sing", "in the town choir"),
    ("go", "swimming twice a week"), ("have", "lunch at noon"), ("take", "the bus to work"),
    ("fix", "old bicycles in the garage"), ("carry", "a small umbrella"),
]
PAST_ACTIONS = [  # (base verb, rest): one-off actions that someone could also plan for the future
    ("visit", "the museum"), ("bake", "a cake"), ("take", "the early train"), ("write", "a long letter"),
    ("buy", "a new bicycle"), ("paint", "the fence"), ("fix", "the kitchen sink"), ("call", "the plumber"),
    ("clean", "the garage"), ("watch", "a film"), ("cook", "a big dinner"), ("plant", "tomatoes"),
    ("meet", "an old friend"), ("sell", "the old car"), ("rent", "a boat"), ("repair", "the roof"),
]
PAST_EXTRA = {"work": "worked", "read": "read", "wash": "washed", "rent": "rented", "repair": "repaired",
              "plant": "planted"}
TIME_MARKERS = [("yesterday", "tomorrow"), ("last week", "next week"), ("last night", "tomorrow night"),
                ("last Saturday", "next Saturday"), ("last summer", "next summer")]


def past_of(verb: str) -> str:
    return PAST_EXTRA.get(verb) or dict(PAST_TENSES)[verb]


def people_sentences(rng) -> list[dict]:
    """Every (subject, predicate) statement with its question, negative and future forms (None where the
    form would not read naturally)."""
    out = []
    for subject, plural in PEOPLE:
        be, has, do = ("are", "have", "do") if plural else ("is", "has", "does")
        S = cap(subject)
        for c in BE_COMPLEMENTS:
            out.append(dict(kind="be", s=f"{S} {be} {c}.", q=f"{cap(be)} {subject} {c}?", n=f"{S} {be} not {c}.",
                            f=f"{S} will be {c}."))
        for a in CAN_ACTIONS:
            out.append(dict(kind="can", s=f"{S} can {a}.", q=f"Can {subject} {a}?", n=f"{S} cannot {a}.", f=None))
        for a in WILL_ACTIONS:
            out.append(dict(kind="will", s=f"{S} will {a}.", q=f"Will {subject} {a}?", n=f"{S} will not {a}.", f=None))
        for part, rest in PERFECT_ACTIONS:
            out.append(dict(kind="perfect", s=f"{S} {has} {part} {rest}.", q=f"{cap(has)} {subject} {part} {rest}?",
                            n=f"{S} {has} not {part} {rest}.", f=None))
        for verb, rest in PRESENT_ACTIONS:
            form = verb if plural else third_person(verb)
            out.append(dict(kind="present", s=f"{S} {form} {rest}.", q=f"{cap(do)} {subject} {verb} {rest}?",
                            n=f"{S} {do} not {verb} {rest}.", f=f"{S} will {verb} {rest}."))
        for verb, rest in PAST_ACTIONS:
            then, later = rng.choice(TIME_MARKERS)
            out.append(dict(kind="past", s=f"{S} {past_of(verb)} {rest} {then}.", q=f"Did {subject} {verb} {rest} {then}?",
                            n=f"{S} did not {verb} {rest} {then}.", f=f"{S} will {verb} {rest} {later}."))
    for item in out:
        item["s0"] = item["s"][:-1]
    return out


QUESTION_PHRASINGS = phrasings(
    "question_forming",
    ("Turn this statement into a yes/no question.", "{q}", "{s}"),
    ("Rewrite the sentence as a question.", "{q}", "{s}"),
    ("Change the following statement into a question that can be answered with yes or no.", "{q}", "{s}"),
    ("Make a question out of this sentence: {s}", "{q}"),
    ('Can you turn "{s0}" into a question?', "{q}"),
    ("What yes/no question would you ask to find out whether this is true? {s}", "{q}"),
)
NEGATION_PHRASINGS = phrasings(
    "negation",
    ("Make this sentence negative.", "{n}", "{s}"),
    ("Rewrite the sentence in the negative form.", "{n}", "{s}"),
    ("Change the following statement so that it says the opposite, using 'not'.", "{n}", "{s}"),
    ("What is the negative form of this sentence? {s}", "{n}"),
    ("Write the negative version of: {s}", "{n}"),
    ('Turn "{s0}" into a negative sentence.', "{n}"),
    ('How do you say "{s0}" in the negative?', "{n}"),
)
FUTURE_PHRASINGS = phrasings(
    "future_tense",
    ("Rewrite this sentence in the future tense.", "{f}", "{s}"),
    ("Change the following sentence to the future tense.", "{f}", "{s}"),
    ("Put the sentence into the future tense using 'will'.", "{f}", "{s}"),
    ("How would this sentence look in the future tense? {s}", "{f}"),
    ("Change to the future tense: {s}", "{f}"),
    ('What is "{s0}" in the future tense?', "{f}"),
    ("The sentence below talks about the present or the past. Rewrite it so that it talks about the future instead.",
     "{f}", "{s}"),
)


def gen_people_rewrites(rng):
    """question_forming, negation and future_tense, each from its own share of the statements."""
    pool = people_sentences(rng)
    rng.shuffle(pool)
    future = [x for x in pool if x["f"]][:36]
    rest = [x for x in pool if x not in future]
    out = [fill("future_tense", p, **x) for x, p in zip(future, spread(rng, FUTURE_PHRASINGS, len(future)))]
    question, negation = rest[:48], rest[48:92]
    out += [fill("question_forming", p, **x) for x, p in zip(question, spread(rng, QUESTION_PHRASINGS, len(question)))]
    out += [fill("negation", p, **x) for x, p in zip(negation, spread(rng, NEGATION_PHRASINGS, len(negation)))]
    return out


# -- parts of speech -------------------------------------------------------------------------------

POS_ADJECTIVES = ["hungry", "small", "old", "tired", "happy", "brown", "young", "clever", "lazy", "noisy"]
POS_NOUNS = ["cat", "dog", "rabbit", "fox", "puppy", "kitten", "squirrel", "mouse"]
POS_VERBS = [  # (past verb, adverbs that fit it, prepositional phrases that fit it)
    ("ran", ["quickly", "happily", "suddenly"], [("across", "the field"), ("through", "the garden"), ("along", "the river")]),
    ("jumped", ["suddenly", "happily", "easily"], [("over", "the fence"), ("onto", "the wall")]),
    ("slept", ["peacefully", "soundly", "quietly"], [("under", "the tree"), ("near", "the fire")]),
    ("waited", ["patiently", "quietly", "calmly"], [("near", "the door"), ("by", "the gate")]),
    ("played", ["happily", "noisily"], [("in", "the garden"), ("near", "the pond")]),
    ("walked", ["slowly", "carefully", "quietly"], [("along", "the river"), ("through", "the park")]),
    ("hid", ["quickly", "quietly"], [("under", "the bed"), ("behind", "the shed")]),
    ("sat", ["quietly", "calmly", "patiently"], [("on", "the wall"), ("near", "the window")]),
]
POS_ASK = phrasings(
    "parts_of_speech",
    ("What part of speech is '{w}' in the sentence \"{s0}\"?", "In this sentence, '{w}' is {pos_a}."),
    ("Identify the part of speech of the word '{w}' in the sentence below.", "In this sentence, '{w}' is {pos_a}.", "{s}"),
    ("In the following sentence, is '{w}' a noun, a verb, an adjective, an adverb or a preposition?",
     "In this sentence, '{w}' is {pos_a}.", "{s}"),
    ("Name the part of speech of '{w}' in this sentence: {s}", "In this sentence, '{w}' is {pos_a}."),
    ("What kind of word is '{w}' here?", "Here, '{w}' is {pos_a}.", "{s}"),
)
POS_FIND = phrasings(
    "parts_of_speech",
    ("Which word in this sentence is {pos_a}?", "The {pos} in this sentence is '{w}'.", "{s}"),
    ("Find the {pos} in the following sentence: {s}", "The {pos} is '{w}'."),
)


def gen_parts_of_speech(rng):
    fam, out = "parts_of_speech", []
    asks, finds = spread(rng, POS_ASK, 36), spread(rng, POS_FIND, 12)
    for i in range(48):
        adjective, noun = rng.choice(POS_ADJECTIVES), rng.choice(POS_NOUNS)
        verb, adverbs, places = rng.choice(POS_VERBS)
        adverb, (preposition, place) = rng.choice(adverbs), rng.choice(places)
        sentence = f"The {adjective} {noun} {verb} {adverb} {preposition} {place}."
        tags = [(adjective, "adjective"), (noun, "noun"), (verb, "verb"), (adverb, "adverb"),
                (preposition, "preposition"), (place.split()[-1], "noun")]
        word, pos = tags[i % len(tags)] if i < 36 else tags[[0, 2, 3, 4][i % 4]]
        p = asks[i] if i < 36 else finds[i - 36]
        out.append(fill(fam, p, w=word, pos=pos, pos_a=f"{article(pos)} {pos}", s=sentence, s0=sentence[:-1]))
    return out


# -- true or false, with a correction ----------------------------------------------------------------

HAND_FACTS = [  # (true statement, false variant)
    ("Water boils at 100 degrees Celsius at sea level.", "Water boils at 50 degrees Celsius at sea level."),
    ("A spider has eight legs.", "A spider has six legs."),
    ("The Pacific Ocean is the largest ocean on Earth.", "The Atlantic Ocean is the largest ocean on Earth."),
    ("Mercury is the planet closest to the Sun.", "Venus is the planet closest to the Sun."),
    ("A triangle has three sides.", "A triangle has four sides."),
    ("There are seven days in a week.", "There are eight days in a week."),
    ("Bees make honey from nectar.", "Bees make honey from leaves."),
    ("The blue whale is the largest mammal on Earth.", "The elephant is the largest mammal on Earth."),
    ("An octagon has eight sides.", "An octagon has six sides."),
    ("Jupiter is the largest planet in our solar system.", "Saturn is the largest planet in our solar system."),
    ("A century is one hundred years.", "A century is ten years."),
    ("A right angle measures 90 degrees.", "A right angle measures 45 degrees."),
]
TRUE_FALSE_PHRASINGS = phrasings(
    "true_false",
    ("True or false: {claim}", "{answer}"),
    ("Is the following statement true or false?", "{answer}", "{claim}"),
    ("Decide whether this statement is true. If it is false, correct it.", "{answer}", "{claim}"),
    ("Is it true that {claim_q}?", "{answer}"),
    ("Check this fact and reply with true or false, giving the correct fact if it is wrong: {claim}", "{answer}"),
    ("Fact-check the sentence below.", "{answer}", "{claim}"),
)


def gen_true_false(rng):
    fam, claims = "true_false", []  # (claim, correct statement)
    for country, capital in rng.sample(CAPITALS, 10):
        wrong = rng.choice([k for c, k in CAPITALS if c != country])
        fact = f"The capital of {country} is {capital}."
        claims.append((fact if rng.random() < 0.5 else f"The capital of {country} is {wrong}.", fact))
    for element, symbol in rng.sample(ELEMENTS, 6):
        wrong = rng.choice([s for e, s in ELEMENTS if e != element])
        fact = f"The chemical symbol for {element} is {symbol}."
        claims.append((fact if rng.random() < 0.5 else f"The chemical symbol for {element} is {wrong}.", fact))
    for n in rng.sample(range(11, 100), 5):
        d = smallest_factor(n)
        fact = f"{n} is a prime number." if d == n else f"{n} is not a prime number because it is divisible by {d}."
        claims.append((f"{n} is a prime number.", fact))
    for _ in range(5):
        a, b = rng.randint(3, 12), rng.randint(3, 12)
        fact = f"{a} times {b} is {a * b}."
        claims.append((fact if rng.random() < 0.5 else f"{a} times {b} is {a * b + rng.choice([-2, -1, 1, 2, a])}.", fact))
    for true, false in HAND_FACTS:
        claims.append((true if rng.random() < 0.5 else false, true))
    out = []
    for (claim, fact), p in zip(claims, spread(rng, TRUE_FALSE_PHRASINGS, len(claims))):
        answer = f"True. {claim}" if claim == fact else f"False. {fact}"
        out.append(fill(fam, p, claim=claim, claim_q=decap(claim[:-1]), answer=answer))
    return out


# -- categories: odd one out, classify into given categories, name examples ---------------------------

CATEGORIES = [  # (name, one member as a noun phrase, countable?, members) - every member in one category only
    ("fruits", "a fruit", True, ["apple", "banana", "cherry", "grape", "lemon", "orange", "peach", "pear", "plum",
                                 "strawberry", "pineapple", "melon"]),
    ("vegetables", "a vegetable", True, ["carrot", "potato", "onion", "cabbage", "leek", "turnip", "radish",
                                         "parsnip", "pea", "cauliflower"]),
    ("mammals", "a mammal", True, ["dog", "horse", "whale", "elephant", "lion", "rabbit", "dolphin", "tiger", "cow",
                                   "bat", "mouse", "giraffe"]),
    ("birds", "a bird", True, ["eagle", "sparrow", "owl", "penguin", "parrot", "robin", "swan", "pigeon", "duck",
                               "crow", "ostrich", "goose"]),
    ("insects", "an insect", True, ["ant", "bee", "beetle", "butterfly", "grasshopper", "ladybug", "wasp", "moth",
                                    "fly", "dragonfly"]),
    ("reptiles", "a reptile", True, ["snake", "lizard", "crocodile", "turtle", "tortoise", "iguana", "alligator",
                                     "gecko"]),
    ("musical instruments", "a musical instrument", True, ["piano", "violin", "guitar", "flute", "drum", "trumpet",
                                                           "cello", "harp", "clarinet", "saxophone"]),
    ("vehicles", "a vehicle", True, ["car", "bus", "truck", "bicycle", "motorcycle", "train", "tram", "van",
                                     "tractor", "taxi"]),
    ("tools", "a tool", True, ["hammer", "saw", "screwdriver", "wrench", "drill", "chisel", "shovel", "rake", "axe"]),
    ("shapes", "a shape", True, ["circle", "square", "triangle", "rectangle", "hexagon", "pentagon", "oval",
                                 "octagon"]),
    ("colors", "a color", False, ["red", "blue", "green", "yellow", "purple", "pink", "brown", "black", "white",
                                  "gray"]),
    ("planets", "a planet", False, ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]),
    ("sports", "a sport", False, ["soccer", "tennis", "basketball", "golf", "rugby", "hockey", "volleyball",
                                  "baseball", "swimming", "boxing"]),
    ("metals", "a metal", False, ["iron", "copper", "gold", "silver", "aluminum", "zinc", "tin", "nickel", "platinum"]),
    ("languages", "a language", False, ["English", "Spanish", "French", "German", "Chinese", "Arabic", "Hindi",
                                        "Japanese", "Russian", "Portuguese"]),
    ("jobs", "a job", False, ["doctor", "teacher", "farmer", "pilot", "nurse", "baker", "engineer", "lawyer", "chef",
                              "plumber", "carpenter"]),
    ("continents", "a continent", False, ["Africa", "Asia", "Europe", "Antarctica", "Australia", "North America",
                                          "South America"]),
]
CATEGORY_PLURALS = {"mouse": "mice", "goose": "geese"}


def plural_noun(word: str) -> str:
    if word in CATEGORY_PLURALS:
        return CATEGORY_PLURALS[word]
    known = dict(PLURALS)
    if word in known:
        return known[word]
    if word in ("potato", "tomato"):
        return word + "es"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def quoted_list(words: list[str]) -> str:
    return join_and([f"'{w}'" for w in words])


ODD_ONE_OUT_PHRASINGS = phrasings(
    "odd_one_out",
    ("Which word does not belong: {items}?", "{answer}"),
    ("Find the odd one out: {items}.", "{answer}"),
    ("Which of these words is the odd one out?", "{answer}", "{items}"),
    ("One of the following words does not belong with the others. Which one is it, and why?", "{answer}", "{items}"),
    ("Pick the word that is different from the others in this list: {items}.", "{answer}"),
    ("Which one is not like the others: {items}?", "{answer}"),
)


def gen_odd_one_out(rng):
    fam, out = "odd_one_out", []
    for p in spread(rng, ODD_ONE_OUT_PHRASINGS, 48):
        (name, _, _, members), (_, odd_a, _, odd_members) = rng.sample(CATEGORIES, 2)
        same, odd = rng.sample(members, rng.choice([3, 3, 4])), rng.choice(odd_members)
        items = same + [odd]
        rng.shuffle(items)
        answer = f"The odd one out is '{odd}': {quoted_list(same)} are {name}, but '{odd}' is {odd_a}."
        out.append(fill(fam, p, items=", ".join(items), answer=answer))
    return out


CATEGORIZE_PHRASINGS = phrasings(
    "categorize",
    ("Sort these items into {c1} and {c2}: {items}.", "{answer}"),
    ("Put each item below into one of two groups: {c1} or {c2}.", "{answer}", "{items}"),
    ("Group the following words into {c1} and {c2}.", "{answer}", "{items}"),
    ("Which of these are {c1} and which are {c2}: {items}?", "{answer}"),
    ("I have a list: {items}. Can you split it into {c1} and {c2}?", "{answer}"),
    ("Here is a mixed list of words. Classify every word into one of the given categories, {c1} or {c2}, and list "
     "the words under each category.", "{answer}", "{items}"),
)


def gen_categorize(rng):
    fam, out = "categorize", []
    for p in spread(rng, CATEGORIZE_PHRASINGS, 36):
        (c1, _, _, m1), (c2, _, _, m2) = rng.sample(CATEGORIES, 2)
        k = rng.choice([2, 3])
        first, second = rng.sample(m1, k), rng.sample(m2, rng.choice([2, 3]))
        items = first + second
        rng.shuffle(items)
        group1, group2 = [w for w in items if w in first], [w for w in items if w in second]
        answer = f"{cap(c1)}: {', '.join(group1)}. {cap(c2)}: {', '.join(group2)}."
        out.append(fill(fam, p, c1=c1, c2=c2, items=", ".join(items), answer=answer))
    return out


EXAMPLE_PHRASINGS = phrasings(
    "category_examples",
    ("Name {n} {cat}.", "Here are {n} {cat}: {examples}."),
    ("List {n} examples of {cat}.", "{N} examples of {cat} are {examples}."),
    ("Give me {n} {cat}, please.", "Here are {n} {cat}: {examples}."),
    ("Can you think of {n} {cat}?", "{N} examples of {cat} are {examples}."),
    ("Name {n} examples of the following category.", "{N} examples of {cat} are {examples}.", "{cat}"),
    ("What are some examples of this? Please list {n}.", "Here are {n} {cat}: {examples}.", "{cat}"),
)


def gen_category_examples(rng):
    fam, out = "category_examples", []
    for p in spread(rng, EXAMPLE_PHRASINGS, 48):
        name, _, countable, members = rng.choice(CATEGORIES)
        n = rng.choice([2, 3, 3, 4])
        chosen = rng.sample(members, n)
        examples = join_and([plural_noun(w) if countable else w for w in chosen])
        out.append(fill(fam, p, n=NUMBER_WORDS[n], N=cap(NUMBER_WORDS[n]), cat=name, examples=examples))
    return out


# -- number sequences and Roman numerals --------------------------------------------------------------

SEQUENCE_NEXT = phrasings(
    "number_sequences",
    ("What is the next number in the sequence {seq}?", "{answer}"),
    ("Continue the pattern with the next number: {seq}, ...", "{answer}"),
    ("Find the next term of this number sequence.", "{answer}", "{seq}"),
    ("What number comes next?", "{answer}", "{seq}"),
    ("Look at the pattern {seq}. Which number should come after {last}?", "{answer}"),
)
SEQUENCE_MISSING = phrasings(
    "number_sequences",
    ("Which number is missing from the sequence {seq}?", "{answer}"),
    ("Fill in the missing number.", "{answer}", "{seq}"),
)
RATIO_WORDS = {2: "twice", 3: "three times", 10: "ten times"}


def gen_number_sequences(rng):
    fam, out = "number_sequences", []
    nexts, missing = spread(rng, SEQUENCE_NEXT, 36), spread(rng, SEQUENCE_MISSING, 12)
    for i in range(36):
        kind = rng.choice(["up", "up", "down", "times", "squares"])
        length = rng.choice([4, 5])
        if kind == "up":
            d, start = rng.choice([2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 15, 20, 25]), rng.randint(1, 50)
            terms = [start + d * k for k in range(length + 1)]
            why = f"each number is {d} more than the one before"
        elif kind == "down":
            d = rng.choice([3, 4, 5, 6, 7, 8, 9, 10, 12, 15])
            start = d * (length + 1) + rng.randint(1, 60)
            terms = [start - d * k for k in range(length + 1)]
            why = f"each number is {d} less than the one before"
        elif kind == "times":
            ratio = rng.choice([2, 2, 3, 10])
            start = rng.choice([1, 2, 3, 5]) if ratio != 10 else rng.choice([1, 2, 3, 4])
            terms = [start * ratio**k for k in range(length + 1)]
            why = f"each number is {RATIO_WORDS[ratio]} the one before"
        else:
            root = rng.randint(1, 6)
            terms = [(root + k) ** 2 for k in range(length + 1)]
            why = f"the sequence lists square numbers and {root + length} × {root + length} = {terms[-1]}"
        shown = ", ".join(map(str, terms[:-1]))
        out.append(fill(fam, nexts[i], seq=shown, last=terms[-2], answer=f"The next number is {terms[-1]}, because {why}."))
    for i in range(12):
        d, start = rng.choice([2, 3, 4, 5, 6, 8, 10, 11, 12, 25]), rng.randint(1, 40)
        terms = [start + d * k for k in range(5)]
        gap = rng.randint(1, 3)
        shown = ", ".join("_" if k == gap else str(t) for k, t in enumerate(terms))
        out.append(fill(fam, missing[i], seq=shown,
                        answer=f"The missing number is {terms[gap]}, because the numbers go up by {d} each time."))
    return out


ROMAN_TO = phrasings(
    "roman_numerals",
    ("Write {n} in Roman numerals.", "{n} in Roman numerals is {r}."),
    ("What is {n} in Roman numerals?", "{n} in Roman numerals is {r}."),
    ("Convert this number to Roman numerals.", "{n} in Roman numerals is {r}.", "{n}"),
)
ROMAN_FROM = phrasings(
    "roman_numerals",
    ("What number does the Roman numeral {r} stand for?", "The Roman numeral {r} stands for {n}."),
    ("Convert the Roman numeral below to an ordinary number.", "{r} is {n}.", "{r}"),
    ("The year on an old building is carved as {r}. Which year is that?", "{r} is the year {n}."),
)


def roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                           (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out, n = out + letters, n - value
    return out


def gen_roman_numerals(rng):
    fam, out = "roman_numerals", []
    numbers = rng.sample(range(1, 100), 14) + rng.sample(range(100, 1000), 6) + rng.sample(range(1000, 4000), 4)
    to, back = spread(rng, ROMAN_TO, 12), spread(rng, ROMAN_FROM[:2], 12)
    for i, n in enumerate(numbers):
        out.append(fill(fam, to[i // 2] if i % 2 == 0 else back[i // 2], n=n, r=roman(n)))
    for year in rng.sample(range(1700, 2031), 8):
        out.append(fill(fam, ROMAN_FROM[2], n=year, r=roman(year)))
    return out


# -- comparatives and superlatives --------------------------------------------------------------------

ADJECTIVE_FORMS = [  # (adjective, comparative, superlative), written out by hand
    ("big", "bigger", "biggest"), ("small", "smaller", "smallest"), ("tall", "taller", "tallest"),
    ("short", "shorter", "shortest"), ("fast", "faster", "fastest"), ("slow", "slower", "slowest"),
    ("happy", "happier", "happiest"), ("easy", "easier", "easiest"), ("busy", "busier", "busiest"),
    ("funny", "funnier", "funniest"), ("hot", "hotter", "hottest"), ("cold", "colder", "coldest"),
    ("thin", "thinner", "thinnest"), ("wide", "wider", "widest"), ("large", "larger", "largest"),
    ("nice", "nicer", "nicest"), ("safe", "safer", "safest"), ("strong", "stronger", "strongest"),
    ("young", "younger", "youngest"), ("old", "older", "oldest"), ("heavy", "heavier", "heaviest"),
    ("early", "earlier", "earliest"), ("wet", "wetter", "wettest"), ("sad", "sadder", "saddest"),
    ("brave", "braver", "bravest"), ("cheap", "cheaper", "cheapest"), ("quick", "quicker", "quickest"),
    ("dry", "drier", "driest"), ("beautiful", "more beautiful", "most beautiful"),
    ("expensive", "more expensive", "most expensive"), ("careful", "more careful", "most careful"),
    ("important", "more important", "most important"), ("interesting", "more interesting", "most interesting"),
    ("comfortable", "more comfortable", "most comfortable"), ("dangerous", "more dangerous", "most dangerous"),
    ("famous", "more famous", "most famous"), ("good", "better", "best"), ("bad", "worse", "worst"),
    ("far", "farther", "farthest"),
]
COMPARATIVE_PHRASINGS = phrasings(
    "comparatives",
    ("What are the comparative and superlative forms of '{a}'?",
     "The comparative of '{a}' is '{c}', and the superlative is '{s}'."),
    ("Give the comparative form of '{a}'.", "The comparative form of '{a}' is '{c}'."),
    ("What is the superlative of '{a}'?", "The superlative of '{a}' is '{s}'."),
    ("Write the comparative and superlative forms of this adjective.",
     "The comparative of '{a}' is '{c}', and the superlative is '{s}'.", "{a}"),
    ("What is the superlative form of the following adjective?", "The superlative form of '{a}' is '{s}'.", "{a}"),
    ("Write the forms of '{a}' that we use to compare two things and to compare three or more things.",
     "To compare two things we say '{c}', and for three or more we say '{s}'."),
)


def gen_comparatives(rng):
    return [fill("comparatives", p, a=a, c=c, s=s)
            for (a, c, s), p in zip(ADJECTIVE_FORMS, spread(rng, COMPARATIVE_PHRASINGS, len(ADJECTIVE_FORMS)))]


# -- combining and splitting sentences -----------------------------------------------------------------

COMBINE_PAIRS = [  # (first sentence, second sentence, joining word)
    ("The sun came out.", "The children ran outside.", "and"), ("The road was long.", "The view was beautiful.", "but"),
    ("It started to rain.", "We went back inside.", "so"), ("We stayed at home.", "The roads were icy.", "because"),
    ("My sister plays the piano.", "My brother plays the drums.", "and"),
    ("The shop was open.", "The shelves were almost empty.", "but"),
    ("The bus was late.", "I missed the start of the film.", "so"), ("She wore a warm coat.", "It was snowing.", "because"),
    ("The soup was hot.", "The bread was fresh.", "and"), ("He studied all night.", "He still felt unprepared.", "but"),
    ("The tickets sold out quickly.", "We watched the concert online.", "so"),
    ("The baby was crying.", "She was hungry.", "because"),
    ("The museum is free on Sundays.", "It is very crowded then.", "so"), ("I like tea.", "My friend prefers coffee.", "but"),
    ("The river was too deep.", "We could not cross it.", "so"),
    ("The plants grew quickly.", "They got plenty of sunlight.", "because"),
    ("Tom cooked dinner.", "Maria washed the dishes.", "and"), ("The phone is old.", "It still works well.", "but"),
    ("The library was closed.", "We studied at a café.", "so"),
    ("The streets were wet.", "It had rained during the night.", "because"),
    ("The birds were singing.", "The flowers were in bloom.", "and"),
    ("The test was difficult.", "Most students passed it.", "but"), ("The oven was too hot.", "The cake burned.", "so"),
    ("The match was cancelled.", "The pitch was flooded.", "because"),
    ("The ice cream melted.", "We left it in the sun.", "because"),
    ("Grace sang a song.", "Her friends clapped along.", "and"),
]
SPLIT_PAIRS = [
    ("The train left the station.", "The passengers settled into their seats.", "and"),
    ("The cake looked delicious.", "It was far too sweet.", "but"), ("The shop closed early.", "We went home.", "so"),
    ("The wind grew stronger.", "The waves crashed against the rocks.", "and"),
    ("The hotel was expensive.", "The rooms were small.", "but"),
    ("The printer ran out of ink.", "I could not print the tickets.", "so"),
    ("Anna opened the window.", "A cool breeze filled the room.", "and"),
    ("The hike was tiring.", "The view from the top was worth it.", "but"),
    ("The milk had gone sour.", "We bought a new carton.", "so"), ("The lights went out.", "Everyone waited in silence.", "and"),
    ("The puppy is small.", "It eats a lot of food.", "but"),
    ("The road was closed.", "The driver took a different route.", "so"),
    ("The teacher rang the bell.", "The students went back to class.", "and"),
    ("The jacket was on sale.", "It did not fit me.", "but"), ("The battery was empty.", "The car would not start.", "so"),
    ("The orchestra began to play.", "The audience fell silent.", "and"), ("The path was muddy.", "We kept walking.", "but"),
    ("The water was cold.", "Nobody went swimming.", "so"), ("Leo painted the walls.", "His father fixed the door.", "and"),
    ("The film was long.", "Nobody in the room was bored.", "but"),
    ("The bakery was closed.", "We bought bread at the supermarket.", "so"),
    ("The snow kept falling.", "The schools stayed closed.", "so"), ("The guests arrived.", "The party began.", "and"),
    ("The exam was short.", "The questions were hard.", "but"),
]
COMBINE_PHRASINGS = phrasings(
    "combine_sentences",
    ("Combine these two sentences into one.", "{joined}", "{s1} {s2}"),
    ("Join the two sentences with '{conj}'.", "{joined}", "{s1} {s2}"),
    ("Use '{conj}' to combine the following sentences into a single sentence.", "{joined}", "{s1} {s2}"),
    ("Combine into one sentence: {s1} {s2}", "{joined}"),
    ('How can I join "{s1n}" and "{s2n}" into one sentence?', "{joined}"),
    ("Rewrite these two short sentences as one longer sentence, keeping the meaning the same.", "{joined}", "{s1} {s2}"),
)
SPLIT_PHRASINGS = phrasings(
    "split_sentences",
    ("Split this sentence into two shorter sentences.", "{two}", "{joined}"),
    ("Break the following sentence into two sentences.", "{two}", "{joined}"),
    ("Rewrite this long sentence as two short ones.", "{two}", "{joined}"),
    ("Split into two sentences: {joined}", "{two}"),
    ("Can you turn this into two separate sentences? {joined}", "{two}"),
    ("Could you split this sentence into two?", "{two}", "{joined}"),
)
SPLIT_OPENERS = {"and": "", "but": "However, ", "so": "As a result, "}


def joined_sentence(s1: str, s2: str, conj: str) -> str:
    return f"{s1[:-1]} because {decap(s2)}" if conj == "because" else f"{s1[:-1]}, {conj} {decap(s2)}"


def gen_combine_split(rng):
    out = []
    for (s1, s2, conj), p in zip(COMBINE_PAIRS, spread(rng, COMBINE_PHRASINGS, len(COMBINE_PAIRS))):
        out.append(fill("combine_sentences", p, s1=s1, s2=s2, s1n=s1[:-1], s2n=s2[:-1], conj=conj,
                        joined=joined_sentence(s1, s2, conj)))
    for (s1, s2, conj), p in zip(SPLIT_PAIRS, spread(rng, SPLIT_PHRASINGS, len(SPLIT_PAIRS))):
        opener = SPLIT_OPENERS[conj]
        two = f"{s1} {opener}{decap(s2)}" if opener else f"{s1} {s2}"
        out.append(fill("split_sentences", p, joined=joined_sentence(s1, s2, conj), two=two))
    return out


# -- formal and simple rewrites ----------------------------------------------------------------------

FORMAL_PAIRS = [  # (informal, formal), hand-written
    ("Hey, can you send me the report asap?", "Hello, could you please send me the report as soon as possible?"),
    ("Thanks a lot for your help!", "Thank you very much for your help."),
    ("I wanna know when the shop opens.", "I would like to know when the shop opens."),
    ("Sorry, I can't make it to the meeting.", "I apologize, but I will not be able to attend the meeting."),
    ("The kids are gonna love the new park.", "The children are going to love the new park."),
    ("Can you tell me where the toilets are?", "Could you please tell me where the restrooms are?"),
    ("We got your email and we'll get back to you soon.", "We have received your email and will reply to you shortly."),
    ("Let me know if you need anything else.", "Please let me know if you require anything further."),
    ("The food was really good.", "The food was excellent."),
    ("Sorry for the late reply.", "I apologize for the delay in my response."),
    ("The boss wants to see you.", "The manager would like to see you."),
    ("We're out of printer paper again.", "We have run out of printer paper again."),
    ("Can I get a coffee?", "May I have a coffee, please?"),
    ("Tell me what you think about my plan.", "I would appreciate your opinion of my plan."),
    ("Lots of people showed up to the event.", "Many people attended the event."),
    ("I'm not sure that's a good idea.", "I am not certain that this is a good idea."),
    ("Check out the attached file.", "Please see the attached file."),
    ("The meeting got moved to Tuesday.", "The meeting has been rescheduled for Tuesday."),
    ("Hi guys, welcome to the team!", "Hello everyone, and welcome to the team."),
    ("We need to fix this problem quickly.", "We need to resolve this issue promptly."),
    ("I think the price is way too high.", "In my opinion, the price is considerably too high."),
    ("Don't forget to bring your ID.", "Please remember to bring your identification."),
    ("The new system is kind of confusing.", "The new system is somewhat confusing."),
    ("Drop me a line when you get there.", "Please contact me when you arrive."),
    ("Our team messed up the order.", "Our team made an error with the order."),
    ("You can't park here.", "Parking is not permitted here."),
    ("I'll be a bit late today.", "I will be slightly late today."),
    ("We've got to finish this by Monday.", "We must complete this by Monday."),
    ("What's going on with my delivery?", "Could you please tell me the status of my delivery?"),
    ("Thanks for getting back to me so fast.", "Thank you for your prompt reply."),
    ("The hotel room was pretty dirty.", "The hotel room was rather unclean."),
    ("Shall we grab lunch sometime?", "Would you like to have lunch together sometime?"),
    ("He's off sick today.", "He is absent today due to illness."),
    ("I don't get how this form works.", "I do not understand how this form works."),
    ("Send the stuff to my office.", "Please send the items to my office."),
    ("Give me a call tomorrow.", "Please telephone me tomorrow."),
]
SIMPLE_PAIRS = [  # (wordy, plain), hand-written
    ("The physician advised the patient to refrain from consuming sugary beverages.",
     "The doctor told the patient not to drink sugary drinks."),
    ("The meeting will commence at nine o'clock.", "The meeting will start at nine o'clock."),
    ("Please ensure that all windows are closed prior to departure.", "Please close all the windows before you leave."),
    ("The children were exceedingly fatigued after the excursion.", "The children were very tired after the trip."),
    ("He purchased a residence in close proximity to the coast.", "He bought a house near the coast."),
    ("The weather conditions are anticipated to deteriorate this evening.", "The weather will probably get worse this evening."),
    ("She possesses an extensive knowledge of ancient history.", "She knows a lot about ancient history."),
    ("Individuals who wish to participate should notify the organizer.", "People who want to take part should tell the organizer."),
    ("The company intends to terminate the project in the near future.", "The company plans to end the project soon."),
    ("Kindly refrain from utilizing mobile telephones in the library.", "Please do not use mobile phones in the library."),
    ("The vehicle sustained considerable damage in the collision.", "The car was badly damaged in the crash."),
    ("The instructor demonstrated how to assemble the apparatus.", "The teacher showed how to put the equipment together."),
    ("Due to inclement weather, the match has been postponed.", "Because of bad weather, the match has been put off."),
    ("It is imperative that you submit the form by Friday.", "You must hand in the form by Friday."),
    ("The scientist conducted numerous experiments to verify the theory.", "The scientist did many tests to check the idea."),
    ("We regret to inform you that the item is unavailable.", "We are sorry, but the item is not available."),
    ("The infant commenced crying when the illumination was extinguished.", "The baby started crying when the light was turned off."),
    ("Sufficient time must be allocated for revision.", "You need to leave enough time to revise."),
    ("The manufacturer recommends that the device be recharged daily.", "The maker says you should charge the device every day."),
    ("Numerous species inhabit the tropical rainforest.", "Many kinds of animals and plants live in the tropical rainforest."),
    ("The committee reached a unanimous decision.", "Everyone on the committee agreed."),
    ("Please indicate your preferred method of payment.", "Please say how you would like to pay."),
    ("The river overflowed its banks following prolonged rainfall.", "The river flooded after a long spell of rain."),
    ("Visitors are requested to remain on the designated paths.", "Visitors are asked to stay on the marked paths."),
    ("The elderly gentleman resides alone in a modest dwelling.", "The old man lives alone in a small house."),
    ("Consumption of food is prohibited on the premises.", "Eating is not allowed in this building."),
    ("He was reluctant to divulge the details of the agreement.", "He did not want to share the details of the deal."),
    ("The establishment will be closed for the duration of the holiday.", "The shop will be closed during the holiday."),
    ("The novel's protagonist embarks on a perilous voyage.", "The hero of the story goes on a dangerous journey."),
    ("The medication should be administered twice daily.", "The medicine should be taken twice a day."),
    ("Her explanation was lucid and concise.", "Her explanation was clear and short."),
    ("The town experienced a significant increase in population.", "The number of people in the town grew a lot."),
    ("Upon arrival, guests should proceed to the reception desk.", "When guests arrive, they should go to the front desk."),
    ("The project was abandoned owing to insufficient funding.", "The project was dropped because there was not enough money."),
    ("A substantial number of residents attended the gathering.", "Many local people came to the meeting."),
    ("We must endeavor to utilize our resources efficiently.", "We must try to use what we have wisely."),
]
FORMAL_PHRASINGS = phrasings(
    "formal_rewrite",
    ("Make this sentence more formal.", "{b}", "{a}"),
    ("Rewrite the following message in a formal tone.", "{b}", "{a}"),
    ("Rewrite the sentence so that it would suit a business email.", "{b}", "{a}"),
    ("How would you say this more politely and formally? {a}", "{b}"),
    ("Make it formal: {a}", "{b}"),
    ("Please rewrite this in formal English: {a}", "{b}"),
)
SIMPLE_PHRASINGS = phrasings(
    "simplify_sentence",
    ("Rewrite this sentence in simpler words.", "{b}", "{a}"),
    ("Make the following sentence easier to understand.", "{b}", "{a}"),
    ("Simplify this sentence for a young reader.", "{b}", "{a}"),
    ("Say this in plain English: {a}", "{b}"),
    ("How could this sentence be written more simply? {a}", "{b}"),
    ("Can you make this sentence simpler?", "{b}", "{a}"),
    ("Rewrite the sentence below using short, everyday words, so that a ten-year-old could understand it.", "{b}", "{a}"),
)


def gen_style_rewrites(rng):
    out = [fill("formal_rewrite", p, a=a, b=b) for (a, b), p in
           zip(FORMAL_PAIRS, spread(rng, FORMAL_PHRASINGS, len(FORMAL_PAIRS)))]
    out += [fill("simplify_sentence", p, a=a, b=b) for (a, b), p in
            zip(SIMPLE_PAIRS, spread(rng, SIMPLE_PHRASINGS, len(SIMPLE_PAIRS)))]
    return out


# -- explanations in one sentence -----------------------------------------------------------------------

EXPLANATIONS = [  # (why/how question, one-sentence answer), hand-written
    ("Why is the sky blue?", "The sky looks blue because the air scatters the blue part of sunlight much more than the red part."),
    ("Why do we have seasons?", "We have seasons because the Earth's axis is tilted, so each half of the planet gets more direct sunlight at some times of the year than at others."),
    ("How does a rainbow form?", "A rainbow forms when sunlight is bent and reflected inside raindrops, which splits the light into its colors."),
    ("Why does ice float on water?", "Ice floats because water expands when it freezes, so ice is less dense than liquid water."),
    ("How do plants get their energy?", "Plants get their energy from sunlight, which they use to turn water and carbon dioxide into sugar."),
    ("Why do we need sleep?", "Sleep lets the body and the brain rest, repair themselves and store what we learned during the day."),
    ("What causes thunder?", "Thunder is the sound of air expanding very quickly when a bolt of lightning heats it."),
    ("Why does the Moon seem to change shape?", "The Moon seems to change shape because, as it orbits the Earth, we see different amounts of its sunlit side."),
    ("How does a vaccine protect us?", "A vaccine trains the immune system to recognize a germ, so the body can fight it off quickly if it ever meets the real thing."),
    ("Why do leaves change color in autumn?", "Leaves change color in autumn because trees stop making green chlorophyll, which lets the yellow and orange colors show."),
    ("Why do we see lightning before we hear thunder?", "We see lightning first because light travels much faster than sound."),
    ("Why does a metal spoon feel colder than a wooden one?", "A metal spoon feels colder because metal carries heat away from your hand faster than wood does."),
    ("Why do we sweat?", "We sweat to cool down, because sweat takes heat away from the skin as it evaporates."),
    ("How do bees help plants?", "Bees help plants by carrying pollen from flower to flower, which lets the plants make seeds and fruit."),
    ("Why is exercise good for the heart?", "Exercise makes the heart muscle stronger, so it can pump blood around the body with less effort."),
    ("What causes the tides?", "Tides are caused mainly by the Moon's gravity pulling on the Earth's oceans."),
    ("Why does a boat float?", "A boat floats because it pushes aside enough water to balance its own weight."),
    ("Why do we brush our teeth?", "We brush our teeth to remove food and bacteria that would otherwise cause tooth decay and gum disease."),
    ("How does recycling help the environment?", "Recycling turns used materials into new products, which saves raw materials and energy and reduces waste."),
    ("Why does bread dough rise?", "Bread dough rises because the yeast in it produces carbon dioxide gas, which forms bubbles that make the dough expand."),
    ("How does a compass work?", "A compass works because its magnetic needle lines up with the Earth's magnetic field and points north."),
    ("Why do many birds fly south in the autumn?", "Many birds fly to warmer places in the autumn to find food and escape the cold winter."),
    ("What is the purpose of a seatbelt?", "A seatbelt holds a passenger in place during a sudden stop, so they are not thrown forward and hurt."),
    ("Why do people put salt on icy roads?", "Salt lowers the temperature at which water freezes, so the ice melts even when it is a little below zero."),
    ("How do fish breathe underwater?", "Fish breathe by passing water over their gills, which take oxygen out of the water."),
    ("Why do we have day and night?", "We have day and night because the Earth spins, so each place faces the Sun for part of the day and faces away from it for the rest."),
    ("What does a battery do?", "A battery stores chemical energy and releases it as electricity when it is connected to a circuit."),
    ("Why should we drink water every day?", "Our bodies lose water all the time, and drinking water replaces it so that the body can keep working properly."),
    ("How does soap clean our hands?", "Soap grabs onto oil and dirt, so water can wash them away from the skin."),
    ("Why is the Sun so hot?", "The Sun is hot because nuclear fusion in its core turns hydrogen into helium and releases a huge amount of energy."),
    ("Why do stars twinkle?", "Stars seem to twinkle because moving air in the Earth's atmosphere keeps bending their light slightly."),
    ("What do the lungs do?", "The lungs move oxygen from the air we breathe into the blood and remove carbon dioxide from it."),
    ("Why does cutting an onion make people cry?", "Cutting an onion releases a gas that irritates the eyes, which then make tears to wash it away."),
    ("How does a refrigerator keep food cold?", "A refrigerator pumps a special fluid that takes heat from inside the fridge and releases it outside."),
    ("What do the roots of a plant do?", "Roots hold a plant in the ground and take in water and minerals from the soil."),
    ("Why do people keep money in a bank?", "People keep money in a bank so that it is safe and, in many accounts, earns interest."),
]
EXPLANATION_PHRASINGS = phrasings(
    "explanations",
    ("{q}", "{a}"),
    ("Explain in one sentence: {q}", "{a}"),
    ("Answer the question below in one sentence.", "{a}", "{q}"),
    ("Give a short explanation, in one sentence, for the following question.", "{a}", "{q}"),
    ("In a single sentence, {ql}", "{a}"),
    ("My little brother asked me this: {q} How can I explain it to him in one simple sentence?", "{a}"),
)


def gen_explanations(rng):
    return [fill("explanations", p, q=q, ql=decap(q), a=a)
            for (q, a), p in zip(EXPLANATIONS, spread(rng, EXPLANATION_PHRASINGS, len(EXPLANATIONS)))]


# -- rhymes -------------------------------------------------------------------------------------------

RHYME_GROUPS = [  # words in one group rhyme and share their spelled ending
    ["cat", "hat", "bat", "mat", "rat", "flat"], ["cake", "lake", "make", "bake", "snake", "rake"],
    ["ring", "sing", "king", "wing", "thing", "spring"], ["night", "light", "bright", "right", "might", "fight"],
    ["bell", "shell", "well", "smell", "spell", "tell"], ["clock", "rock", "sock", "block", "lock", "dock"],
    ["rain", "train", "chain", "brain", "plain", "main"], ["tree", "bee", "free", "knee", "three", "see"],
    ["moon", "spoon", "soon", "balloon", "noon"], ["top", "shop", "stop", "drop", "hop", "mop"],
    ["bug", "hug", "mug", "rug", "jug"], ["game", "name", "same", "flame", "frame"],
    ["round", "sound", "found", "ground", "pound"], ["hill", "fill", "mill", "will", "spill"],
    ["mail", "nail", "tail", "snail", "sail"], ["dog", "frog", "log", "fog"], ["sun", "run", "fun", "bun"],
    ["pen", "ten", "hen", "men"], ["bed", "red", "fed", "shed"], ["car", "star", "jar", "far"],
    ["day", "play", "say", "way", "stay", "tray"], ["boat", "coat", "goat", "float"],
    ["duck", "truck", "luck", "stuck"], ["fish", "dish", "wish"], ["pin", "win", "skin", "chin", "spin"],
    ["cold", "gold", "hold", "bold", "old"],
]
RHYME_PHRASINGS = phrasings(
    "rhymes",
    ("What word rhymes with '{w}'?", "A word that rhymes with '{w}' is '{r1}'."),
    ("Give a word that rhymes with '{w}'.", "A word that rhymes with '{w}' is '{r1}'."),
    ("Name three words that rhyme with '{w}'.", "Three words that rhyme with '{w}' are '{r1}', '{r2}' and '{r3}'."),
    ("Find a rhyming word for the word below.", "'{r1}' rhymes with '{w}'.", "{w}"),
    ("List two words that rhyme with this one.", "Two words that rhyme with '{w}' are '{r1}' and '{r2}'.", "{w}"),
    ("I am writing a short poem and need a rhyme for '{w}'. Any ideas?", "You could use '{r1}', which rhymes with '{w}'."),
)


def gen_rhymes(rng):
    fam, out = "rhymes", []
    for p in spread(rng, RHYME_PHRASINGS, 48):
        group = rng.choice(RHYME_GROUPS)
        w, r1, r2, r3 = rng.sample(group, 4) if len(group) >= 4 else rng.sample(group, 3) + [None]
        if r3 is None and "{r3}" in p.output:
            group = rng.choice([g for g in RHYME_GROUPS if len(g) >= 4])
            w, r1, r2, r3 = rng.sample(group, 4)
        out.append(fill(fam, p, w=w, r1=r1, r2=r2, r3=r3))
    return out


# -- calendar and clock --------------------------------------------------------------------------------

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [("January", 31), ("February", 28), ("March", 31), ("April", 30), ("May", 31), ("June", 30), ("July", 31),
          ("August", 31), ("September", 30), ("October", 31), ("November", 30), ("December", 31)]
CALENDAR_PHRASINGS = {
    "next_day": phrasings("calendar", ("What day comes after {d}?", "The day after {d} is {d2}."))[0],
    "prev_day": phrasings("calendar", ("Which day of the week comes before this one?", "The day before {d} is {d2}.",
                                       "{d}"))[0],
    "days_later": phrasings("calendar", ("If today is {d}, what day will it be in {k} days?",
                                         "In {k} days, it will be {d2}."))[0],
    "next_month": phrasings("calendar", ("Name the month that comes after this one.", "The month after {m} is {m2}.",
                                         "{m}"))[0],
    "months_later": phrasings("calendar", ("What month is it {k} months after {m}?",
                                           "The month that comes {k} months after {m} is {m2}."))[0],
    "month_days": phrasings("calendar", ("How many days are there in {m}?", "{answer}"))[0],
    "leap": phrasings("calendar", ("Is {y} a leap year?", "{answer}"))[0],
    "leap_input": phrasings("calendar", ("Tell me whether the following year is a leap year.", "{answer}", "{y}"))[0],
}


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def gen_calendar(rng):
    fam, out = "calendar", []
    kinds = spread(rng, list(CALENDAR_PHRASINGS), 48)
    for kind in kinds:
        p = CALENDAR_PHRASINGS[kind]
        d, (m, days), k = rng.randrange(7), rng.choice(MONTHS), rng.randint(2, 20)
        mi = [name for name, _ in MONTHS].index(m)
        if kind == "next_day":
            values = dict(d=DAYS[d], d2=DAYS[(d + 1) % 7])
        elif kind == "prev_day":
            values = dict(d=DAYS[d], d2=DAYS[(d - 1) % 7])
        elif kind == "days_later":
            values = dict(d=DAYS[d], k=k, d2=DAYS[(d + k) % 7])
        elif kind == "next_month":
            values = dict(m=m, m2=MONTHS[(mi + 1) % 12][0])
        elif kind == "months_later":
            k = rng.randint(2, 11)
            values = dict(m=m, k=k, m2=MONTHS[(mi + k) % 12][0])
        elif kind == "month_days":
            answer = "February has 28 days, or 29 in a leap year." if m == "February" else f"{m} has {days} days."
            values = dict(m=m, answer=answer)
        else:
            year = rng.choice([rng.randint(1890, 2040), 4 * rng.randint(475, 510), rng.choice([1900, 2000, 2100, 1800])])
            answer = f"Yes, {year} is a leap year." if is_leap(year) else f"No, {year} is not a leap year."
            values = dict(y=year, answer=answer)
        out.append(fill(fam, p, **values))
    return out


def time_12(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{(h - 1) % 12 + 1}:{m:02d} {'a.m.' if h < 12 else 'p.m.'}"


def time_24(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def duration(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h} hour{'s' if h != 1 else ''} and {m} minutes"


CLOCK_PHRASINGS = {
    "after": phrasings("clock_time", ("What time is it {k} minutes after {t}?", "{k} minutes after {t}, it is {t2}."))[0],
    "after_input": phrasings("clock_time", ("What time will it be {k} minutes after the time below?",
                                            "{k} minutes after {t}, it will be {t2}.", "{t}"))[0],
    "between": phrasings("clock_time", ("How many minutes are there between {t} and {t2}?",
                                        "There are {k} minutes between {t} and {t2}."))[0],
    "film": phrasings("clock_time", ("A film starts at {t} and lasts {dur}. At what time does it end?",
                                     "The film ends at {t2}."))[0],
    "to_24": phrasings("clock_time", ("Write {t} in 24-hour time.", "In 24-hour time, {t} is {t24}."))[0],
    "to_12": phrasings("clock_time", ("Convert this 24-hour time to 12-hour time with a.m. or p.m.",
                                      "{t24} is {t} in 12-hour time.", "{t24}"))[0],
}


def gen_clock_time(rng):
    fam, out = "clock_time", []
    for kind in spread(rng, list(CLOCK_PHRASINGS), 42):
        start = rng.randrange(6 * 60, 21 * 60, 5)
        if start % 60 == 0:
            start += 5 * rng.randint(1, 11)
        k = rng.choice([15, 20, 25, 30, 35, 40, 45, 50, 55, 70, 75, 90, 105, 120, 135, 150])
        if kind == "film":
            k = rng.choice([65, 80, 95, 100, 110, 125, 130, 140, 155, 170])
        values = dict(t=time_12(start), t2=time_12(start + k), k=k, dur=duration(k), t24=time_24(start))
        out.append(fill(fam, CLOCK_PHRASINGS[kind], **values))
    return out


# -- averages -----------------------------------------------------------------------------------------

AVERAGE_PHRASINGS = {
    "mean": phrasings("averages", ("What is the average of {listed}?", "The average of {listed} is {mean}."))[0],
    "mean_input": phrasings("averages", ("Find the mean of these numbers.", "The mean of these numbers is {mean}.",
                                         "{numbers}"))[0],
    "median": phrasings("averages", ("What is the median of {listed}?", "The median of {listed} is {median}."))[0],
    "range": phrasings("averages", ("Find the range of the following numbers.", "The range is {hi} - {lo} = {spread}.",
                                    "{numbers}"))[0],
    "scores": phrasings("averages", ("{N} scored {listed} on {k} tests. What was {pos} average score?",
                                     "{N}'s average score was {mean}."))[0],
    "total": phrasings("averages", ("Work out the total of {listed}.", "The total of {listed} is {total}."))[0],
    "mean_long": phrasings("averages", ("I wrote down these numbers and would like to know their average. Please work "
                                        "it out and give the result in one sentence.",
                                        "The average of these numbers is {mean}.", "{numbers}"))[0],
}


def gen_averages(rng):
    fam, out = "averages", []
    for kind in spread(rng, list(AVERAGE_PHRASINGS), 42):
        n = rng.choice([3, 5]) if kind == "median" else rng.choice([3, 4, 5])
        while True:
            numbers = rng.sample(range(2, 100), n) if kind != "scores" else rng.sample(range(55, 100), n)
            mean = Fraction(sum(numbers), n)
            if (mean * 100).denominator == 1:
                break
        name, _, _, possessive = rng.choice(NAMES)
        values = dict(listed=join_and([str(x) for x in numbers]), numbers=", ".join(map(str, numbers)),
                      mean=fmt_number(mean), median=sorted(numbers)[n // 2], hi=max(numbers), lo=min(numbers),
                      spread=max(numbers) - min(numbers), total=sum(numbers), N=name, pos=possessive, k=n)
        out.append(fill(fam, AVERAGE_PHRASINGS[kind], **values))
    return out


# -- abbreviations ------------------------------------------------------------------------------------

ABBREVIATIONS = [  # (abbreviation, what it stands for)
    ("km", "kilometer"), ("kg", "kilogram"), ("cm", "centimeter"), ("mm", "millimeter"), ("lb", "pound"),
    ("oz", "ounce"), ("ft", "foot"), ("mph", "miles per hour"), ("tsp", "teaspoon"), ("tbsp", "tablespoon"),
    ("ASAP", "as soon as possible"), ("DIY", "do it yourself"), ("FAQ", "frequently asked questions"),
    ("UN", "United Nations"), ("EU", "European Union"), ("UK", "United Kingdom"),
    ("USA", "United States of America"), ("NASA", "National Aeronautics and Space Administration"),
    ("DNA", "deoxyribonucleic acid"), ("CEO", "chief executive officer"), ("PIN", "personal identification number"),
    ("ATM", "automated teller machine"), ("GPS", "Global Positioning System"), ("VIP", "very important person"),
    ("UFO", "unidentified flying object"), ("CPU", "central processing unit"), ("WHO", "World Health Organization"),
    ("Dr.", "Doctor"), ("Mt.", "Mount"), ("Ave.", "Avenue"), ("approx.", "approximately"), ("Jan.", "January"),
    ("Feb.", "February"), ("Aug.", "August"), ("Dec.", "December"), ("Mon.", "Monday"), ("Fri.", "Friday"),
]
ABBREVIATION_EXPAND = phrasings(
    "abbreviations",
    ("What does '{a}' stand for?", "'{a}' stands for '{m}'."),
    ("What is '{a}' short for?", "'{a}' is short for '{m}'."),
    ("Write out this abbreviation in full.", "'{a}' stands for '{m}'.", "{a}"),
    ("I keep seeing '{a}' written down. What does it stand for?", "'{a}' stands for '{m}'."),
)
ABBREVIATION_SHORTEN = phrasings(
    "abbreviations",
    ("What is the abbreviation for '{m}'?", "The abbreviation for '{m}' is '{a}'."),
    ("Give the usual abbreviation for the following.", "'{m}' is usually shortened to '{a}'.", "{m}"),
)


def gen_abbreviations(rng):
    fam, out = "abbreviations", []
    expand, shorten = spread(rng, ABBREVIATION_EXPAND, len(ABBREVIATIONS)), spread(rng, ABBREVIATION_SHORTEN, len(ABBREVIATIONS))
    for i, (a, m) in enumerate(ABBREVIATIONS):
        out.append(fill(fam, expand[i] if rng.random() < 0.65 else shorten[i], a=a, m=m))
    return out


PROPER_WORDS = ([name for name, *_ in NAMES] + ["Tom", "Maria", "Anna", "Leo", "Grace", "Mercury", "Venus", "Jupiter",
                                                 "Saturn", "Mars", "Earth"])


GENERATORS = [gen_spelling, gen_plurals, gen_past_tense, gen_antonyms, gen_synonyms, gen_unit_conversion,
              gen_arithmetic, gen_word_problems, gen_voice, gen_summaries, gen_sentiment, gen_translation,
              gen_capitals, gen_chemical_symbols, gen_definitions, gen_grammar, gen_alphabetical,
              gen_number_sorting, gen_counting, gen_number_facts, gen_simple_facts,
              # added in issue 13
              gen_people_rewrites, gen_parts_of_speech, gen_true_false, gen_odd_one_out, gen_categorize,
              gen_category_examples, gen_number_sequences, gen_roman_numerals, gen_comparatives, gen_combine_split,
              gen_style_rewrites, gen_explanations, gen_rhymes, gen_calendar, gen_clock_time, gen_averages,
              gen_abbreviations]

# The largest of the original families are thinned (a seeded sample, after duplicate filtering) so that no
# kind of task dominates and the whole set stays small enough to fine-tune on a laptop CPU.
FAMILY_CAPS = {"translation": 100, "past_tense": 90, "arithmetic": 95, "capitals": 85, "plurals": 80,
               "unit_conversion": 80, "spelling": 75, "number_facts": 70}

# ==================================================================================================
# Duplicate filter, assembly, output
# ==================================================================================================


def record_text(record: dict) -> str:
    """Whole record, lower case, single spaces: what duplicate checks compare."""
    text = " \n ".join(record[k] for k in ("instruction", "input", "output"))
    return re.sub(r"\s+", " ", text.lower()).strip()


def trigram_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(len(text) - 2):
        gram = text[i:i + 3]
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def near_duplicate_pairs(texts: list[str], threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (i < j) whose character 3-gram count vectors have cosine >= threshold.

    Counts are small integers, so the float32 dot products are exact and the comparison
    dot**2 >= t**2 * |a|**2 * |b|**2 is done in integers: the result does not depend on the BLAS.
    """
    import numpy as np

    counts = [trigram_counts(t) for t in texts]
    vocab: dict[str, int] = {}
    for c in counts:
        for gram in sorted(c):
            vocab.setdefault(gram, len(vocab))
    matrix = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for row, c in enumerate(counts):
        for gram, n in c.items():
            matrix[row, vocab[gram]] = n
    dots = np.rint(matrix @ matrix.T).astype(np.int64)  # exact: every partial sum is a small integer
    norms2 = np.diag(dots).copy()
    t = Fraction(threshold).limit_denominator(10_000)
    lhs = dots * dots * t.denominator**2
    rhs = np.outer(norms2, norms2) * t.numerator**2
    hits = np.argwhere(np.triu(lhs >= rhs, k=1))
    return [(int(i), int(j), float(dots[i, j] / math.sqrt(norms2[i] * norms2[j]))) for i, j in hits]


def build_records(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    candidates: list[dict] = []
    for generate in GENERATORS:
        candidates.extend(generate(rng))
    # drop exact duplicates and near-duplicates of a record kept earlier (whole record, 3-gram cosine)
    texts = [record_text(r) for r in candidates]
    dropped: set[int] = set()
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text in seen:
            dropped.add(i)
        seen.setdefault(text, i)
    for i, j, _ in near_duplicate_pairs(texts, NEAR_DUPLICATE_BUILD_THRESHOLD):
        if i not in dropped:
            dropped.add(j)
    records = [r for k, r in enumerate(candidates) if k not in dropped]
    for family, limit in FAMILY_CAPS.items():  # a seeded sample of the largest families
        members = [k for k, r in enumerate(records) if r["family"] == family]
        if len(members) > limit:
            thinned = set(rng.sample(members, len(members) - limit))
            records = [r for k, r in enumerate(records) if k not in thinned]
    rng.shuffle(records)  # mixed families in file order, so the book's by-order split also sees them all
    return records


def render(records: list[dict]) -> str:
    return json.dumps(records, indent=1, ensure_ascii=False) + "\n"


def family_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["family"]] = counts.get(r["family"], 0) + 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    parser.add_argument("--out", type=Path, default=OUT_PATH, help=f"output path (default {OUT_PATH})")
    args = parser.parse_args(argv)
    records = build_records()
    text = render(records)
    if args.check:
        if not args.out.exists():
            print(f"{args.out} does not exist; run: python data/build_dataset.py")
            return 1
        if args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} differs from what data/build_dataset.py generates; "
                  "run `python data/build_dataset.py` to rewrite it (and commit the result)")
            return 1
        print(f"{args.out} is up to date ({len(records):,} records)")
        return 0
    args.out.write_text(text, encoding="utf-8")
    with_input = sum(1 for r in records if r["input"])
    print(f"wrote {args.out} - {len(records):,} records, {len(family_counts(records))} families, "
          f"{100 * with_input / len(records):.1f} % with input")
    for fam, n in family_counts(records).items():
        print(f"  {fam:20s} {n:4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
