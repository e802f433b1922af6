"""A synthetic demo world: a movie catalog, users with planted tastes, and their event streams.

Everything is derived from one seed through private ``random.Random`` streams (never the global
random module, never the clock), so the same arguments always give exactly the same world, down to
the bytes of its JSON Lines file.

What the streams look like (docs/contract.md, "Event ingestion"):

- a watch session is several ``watch`` heartbeats for the same movie and ``sessionId``, progress
  rising through 5, 25, 50, 75, 95 (and sometimes 100) percent, stopping early when the user
  abandons the movie (much more often when it is off their taste); ``watchDuration`` is the seconds
  watched so far, except in about 5 % of sessions where it is the movie's full length, as the
  platform sometimes sends; some abandoned movies are resumed in a later session and some finished
  ones rewatched;
- a ``search`` (``movieId`` null) precedes some sessions, with a query made of title words or a
  genre name, and the session's ``sessionId``; a few searches lead nowhere;
- a ``rating`` follows some finished watches (rarely an abandoned one), higher for on-taste and
  better movies; a few are edited later (``previousRating`` set);
- ``favorite`` adds follow mostly liked movies, and a few are removed later.

Users pick a movie matching one of their favourite genres most of the time (``DemoUser.focus``,
about 80 %), weighted by a long-tailed (Zipf-like) movie popularity, and otherwise pick among the
popular movies of the whole catalog: the taste structure is there to be learnt.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from random import Random
from typing import Any

import orjson

__all__ = [
    "DEFAULT_END",
    "GENRES",
    "TASTES",
    "DemoUser",
    "World",
    "generate_world",
    "iter_world_lines",
    "read_world",
    "write_world",
]

DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)

GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science Fiction",
    "Thriller",
    "War",
    "Western",
)

# Taste clusters: the genres a user's favourites are drawn from (weights), and how common the
# cluster is among users.
TASTES: dict[str, dict[str, float]] = {
    "action": {"Action": 4, "Adventure": 2, "Thriller": 2, "Crime": 1},
    "comedy": {"Comedy": 4, "Romance": 1, "Family": 1, "Action": 1},
    "suspense": {"Thriller": 3, "Crime": 2, "Mystery": 2, "Action": 1},
    "romance": {"Romance": 3, "Comedy": 2, "Drama": 2, "Music": 1},
    "science-fiction": {"Science Fiction": 3, "Adventure": 2, "Action": 2, "Fantasy": 1},
    "arthouse": {"Drama": 3, "History": 2, "War": 1, "Crime": 1},
    "family": {"Family": 3, "Animation": 3, "Adventure": 1, "Fantasy": 1, "Comedy": 1},
    "horror": {"Horror": 4, "Thriller": 2, "Mystery": 1},
    "fantasy": {"Fantasy": 3, "Adventure": 2, "Animation": 1, "Science Fiction": 1},
    "documentary": {"Documentary": 4, "History": 2, "Music": 1},
    "frontier": {"Western": 3, "War": 2, "Action": 2, "History": 1},
}
_TASTE_SHARE = {
    "action": 14,
    "comedy": 12,
    "suspense": 11,
    "romance": 10,
    "science-fiction": 9,
    "arthouse": 9,
    "family": 9,
    "horror": 8,
    "fantasy": 7,
    "documentary": 5,
    "frontier": 4,
}

# --- the catalog ----------------------------------------------------------------------------------
# How common each genre is as a movie's main genre.
_GENRE_SHARE = {
    "Drama": 14,
    "Comedy": 12,
    "Action": 10,
    "Thriller": 9,
    "Horror": 6,
    "Romance": 6,
    "Crime": 6,
    "Science Fiction": 5,
    "Adventure": 5,
    "Documentary": 5,
    "Animation": 4,
    "Family": 4,
    "Fantasy": 4,
    "Mystery": 4,
    "History": 2,
    "War": 2,
    "Music": 2,
    "Western": 2,
}
# Which genres a movie of a main genre may add (Horror never meets Family or Animation).
_COMPANIONS = {
    "Action": ("Adventure", "Thriller", "Science Fiction", "Crime", "War", "Western", "Comedy"),
    "Adventure": ("Action", "Fantasy", "Family", "Science Fiction", "Animation", "Comedy"),
    "Animation": ("Family", "Adventure", "Comedy", "Fantasy", "Music"),
    "Comedy": ("Romance", "Family", "Drama", "Action", "Crime", "Animation", "Music"),
    "Crime": ("Thriller", "Drama", "Mystery", "Action", "Comedy"),
    "Documentary": ("History", "Music", "War", "Crime"),
    "Drama": ("Romance", "Crime", "History", "War", "Music", "Comedy", "Thriller", "Mystery"),
    "Family": ("Animation", "Adventure", "Comedy", "Fantasy", "Music"),
    "Fantasy": ("Adventure", "Family", "Animation", "Action", "Romance", "Horror"),
    "History": ("Drama", "War", "Documentary", "Romance", "Adventure"),
    "Horror": ("Thriller", "Mystery", "Science Fiction", "Fantasy", "Comedy"),
    "Music": ("Drama", "Romance", "Comedy", "Documentary", "Animation"),
    "Mystery": ("Thriller", "Crime", "Horror", "Drama"),
    "Romance": ("Comedy", "Drama", "Music", "Fantasy", "History"),
    "Science Fiction": ("Action", "Adventure", "Thriller", "Horror", "Mystery"),
    "Thriller": ("Crime", "Mystery", "Action", "Horror", "Drama", "Science Fiction"),
    "War": ("Drama", "History", "Action", "Documentary"),
    "Western": ("Action", "Adventure", "Drama", "Comedy"),
}
# Minimum viewer ages a genre suggests; a movie takes the highest of its genres' picks.
_AGES = {
    "Action": (13, 13, 16),
    "Adventure": (7, 13),
    "Animation": (0, 7),
    "Comedy": (0, 7, 13, 13),
    "Crime": (13, 16, 16, 18),
    "Documentary": (0, 0, 7, 13),
    "Drama": (7, 13, 13, 16),
    "Family": (0, 0, 7),
    "Fantasy": (7, 13),
    "History": (7, 13, 16),
    "Horror": (16, 18),
    "Music": (0, 7, 13),
    "Mystery": (7, 13, 16),
    "Romance": (7, 13, 13, 16),
    "Science Fiction": (7, 13, 16),
    "Thriller": (13, 16, 16, 18),
    "War": (13, 16, 18),
    "Western": (7, 13, 16),
}
_COUNTRIES = {
    "United States": 40,
    "United Kingdom": 10,
    "France": 7,
    "India": 6,
    "Japan": 6,
    "Germany": 5,
    "South Korea": 5,
    "Canada": 4,
    "Italy": 4,
    "Spain": 4,
    "Australia": 3,
    "Brazil": 3,
    "China": 3,
    "Mexico": 3,
    "Argentina": 2,
    "Denmark": 2,
    "Nigeria": 2,
    "Poland": 2,
    "Sweden": 2,
    "Iran": 1,
}
_GENERAL_TAGS = (
    "award winner",
    "cult classic",
    "based on a true story",
    "based on a book",
    "twist ending",
    "slow burn",
    "feel-good",
    "dark",
    "visually stunning",
    "ensemble cast",
    "coming of age",
    "independent",
    "critically acclaimed",
    "director's cut",
)
_GENRE_TAGS = {
    "Action": ("martial arts", "car chase", "revenge", "spy", "explosive"),
    "Adventure": ("treasure hunt", "survival", "expedition", "quest"),
    "Animation": ("anime", "stop motion", "hand-drawn", "talking animals"),
    "Comedy": ("satire", "road trip", "buddy comedy", "parody", "romcom"),
    "Crime": ("heist", "detective", "mafia", "serial killer", "noir"),
    "Documentary": ("nature", "biography", "true crime", "sports", "science"),
    "Drama": ("family drama", "courtroom", "tearjerker", "character study"),
    "Family": ("animals", "holiday", "friendship", "kids"),
    "Fantasy": ("magic", "dragons", "fairy tale", "swords and sorcery"),
    "History": ("period piece", "biography", "epic", "royalty"),
    "Horror": ("supernatural", "slasher", "haunted house", "found footage", "gore"),
    "Music": ("musical", "concert", "band", "biopic"),
    "Mystery": ("whodunit", "detective", "amnesia", "cold case"),
    "Romance": ("love triangle", "wedding", "second chance", "forbidden love"),
    "Science Fiction": ("space", "time travel", "dystopia", "artificial intelligence", "aliens"),
    "Thriller": ("conspiracy", "psychological", "cat and mouse", "hostage"),
    "War": ("world war ii", "resistance", "soldiers", "anti-war"),
    "Western": ("frontier", "outlaw", "gunslinger", "revenge"),
}

# Title words per genre: adjectives and nouns, combined by a few templates.
_WORDS: dict[str, tuple[str, str]] = {
    "Action": (
        "Iron Steel Burning Final Rogue Silent Savage Broken Deadly Crimson Hard Lethal Fast "
        "Black Last Wild Blind Bulletproof Maximum Red",
        "Protocol Strike Vendetta Fury Impact Siege Target Justice Code Run Payback Force Storm "
        "Line Edge Point Shot Escape Getaway Contract",
    ),
    "Adventure": (
        "Lost Hidden Forgotten Golden Distant Great Endless Secret Sunken Wild Uncharted Emerald "
        "Last Northern Desert Jade Ancient Brave Silver Far",
        "Expedition Island Voyage Map Treasure Kingdom Frontier Horizon Compass Temple River "
        "Passage Quest Trail Crossing Summit Journey Jungle Caravan Lagoon",
    ),
    "Animation": (
        "Little Tiny Brave Magic Sleepy Clockwork Paper Jolly Bouncing Curious Secret Flying "
        "Starry Lucky Wandering Cozy Mighty Happy Dancing Whistling",
        "Fox Robot Dragon Balloon Penguin Lantern Kite Garden Forest Firefly Owl Cloud Moon "
        "Submarine Bakery Bear Train Puppet Comet Acorn",
    ),
    "Comedy": (
        "Big Accidental Crazy Awkward Perfect Wrong Lucky Terrible Bad Fantastic Unlikely "
        "Spectacular Ridiculous Borrowed Last-Minute Double Fake Ultimate Weekend Family",
        "Wedding Vacation Roommates Neighbors Reunion Plan Date Getaway Business Party Job "
        "Inheritance Holiday Heist Interns Detour Makeover Birthday Weekend Roadtrip",
    ),
    "Crime": (
        "Dirty Cold Crooked Quiet Dead Hollow Black Bitter Blue Empty Stolen Hidden Perfect Long "
        "Marked Silent Night Red Narrow Final",
        "Money Alibi Confession Witness Ledger Deal Score Street Harbor Motive Informant Racket "
        "Badge Verdict Job Precinct Trade Corner Syndicate Connection",
    ),
    "Documentary": (
        "Hidden Invisible Last Wild Secret Human Living Frozen Deep Silent Forgotten Untold "
        "Fragile Rising Endangered Unseen Great Urban Ocean Quiet",
        "Planet Coast Machine Mountains Voices Rivers Kingdom Forest Migration Harvest Frontier "
        "Archive Signal Tides Nation Desert Current Century Reef Code",
    ),
    "Drama": (
        "Quiet Broken Long Distant Last Small Borrowed Bright Fading Gentle Burning Winter Paper "
        "Honest Hollow Golden Open Still Simple Late",
        "Hours Season Promise Letters House Light Summer Years Road Harvest Silence Shore "
        "Inheritance Garden Portrait Homecoming Window Bridge Rain Tide",
    ),
    "Family": (
        "Great Little Magical Big Runaway Wonderful Christmas Secret Amazing Brave Lucky Honey "
        "Sunny Merry Flying Lost Best Happy Tiny Giant",
        "Puppy Treehouse Adventure Holiday Pony Summer Campout Circus Snowday Dragon Robot "
        "Carnival Lighthouse Friends Picnic Parade Farm Kite Sled Zoo",
    ),
    "Fantasy": (
        "Shadow Crystal Silver Enchanted Ember Hollow Ivory Iron Thorned Moonlit Elder Fallen "
        "Gilded Storm Raven Obsidian Eternal Wyrd Sunken Winter",
        "Crown Throne Sword Realm Oath Forest Spell Kingdom Tower Blade Prophecy Gate Witch Heir "
        "Queen Dragon Relic Citadel Grimoire Rune",
    ),
    "History": (
        "Last Iron Imperial Royal Forgotten Grand Silent Final Golden Red Great Lost Long First "
        "Northern Winter Bitter Broken Noble Sovereign",
        "Empire Dynasty Revolution Crown Republic Treaty Harvest Mutiny Expedition Coronation "
        "Rebellion Council Conquest Queen Emperor Archive Chronicle Reign March Exile",
    ),
    "Horror": (
        "Hollow Dead Pale Silent Rotten Cursed Black Bleeding Dark Crawling Hungry Wicked Buried "
        "Grim Sinister Faceless Drowned Screaming Forsaken Midnight",
        "House Hour Woods Mirror Basement Ritual Children Whisper Doll Cellar Well Harvest "
        "Visitor Night Chapel Asylum Hunger Thing Attic Marsh",
    ),
    "Music": (
        "Blue Electric Golden Velvet Broken Midnight Last Neon Wild Rhythm Silver Sweet Lonely "
        "Loud Open Soul Perfect Summer Southern Final",
        "Chord Record Melody Tour Encore Highway Stage Anthem Ballad Session Groove Rhapsody "
        "Serenade Song Band Harmony Symphony Beat Jam Echo",
    ),
    "Mystery": (
        "Locked Vanishing Missing Silent Seventh Crimson Hidden Glass Hollow Last Secret Strange "
        "Twelfth Unfinished Black Quiet Pale Empty Winter Fallen",
        "Room Key Letter Witness Clue Manor Guest Lighthouse Diary Portrait Cipher Inheritance "
        "Passenger Island Clock Mask Staircase Photograph Affair Window",
    ),
    "Romance": (
        "Endless Sweet Second Summer Paper Stolen Last First Lovely Tender Forever Golden Secret "
        "Perfect Crazy Little Wild Honey Autumn Starlit",
        "Kiss Heart Promise Letters Affair Romance Vows Love Chance Dance Proposal Wedding Summer "
        "Holiday Moment Song Sunset Garden Rendezvous Valentine",
    ),
    "Science Fiction": (
        "Last Quantum Silent Red Dark Infinite Hollow Binary Distant Cold Synthetic Eclipse Final "
        "Zero Lunar Solar Stellar Neon Orbital Deep",
        "Orbit Signal Horizon Colony Frontier Protocol Machine Station Planet Drift Paradox "
        "Singularity Nebula Equation Reactor Exodus Outpost Genesis Transmission Void",
    ),
    "Thriller": (
        "Silent Blind Dark Final Cold Deadly Perfect Hidden Broken Black Twisted Sleeping Burning "
        "Fatal Split Crooked Pale Quiet Narrow Night",
        "Witness Target Agenda Trap Game Hour Call Exit Signal Stranger Secret Pursuit Code Shift "
        "Ward Passenger Line Motive Lie Deception",
    ),
    "War": (
        "Iron Red Winter Last Bloody Silent Distant Burning Black Long Broken Final Northern "
        "Steel Grey Lost Forgotten Frozen Open Eastern",
        "Front Battalion Harvest Line Sky Trenches Ridge Convoy Division March Beach Bridge "
        "Garrison Offensive Valley Company Siege Resistance Armistice Mission",
    ),
    "Western": (
        "Dusty Lonesome Red Dead Long Wild Iron Black High Last Silver Broken Pale Golden Thirsty "
        "Hard Bitter Lone Burning Outlaw",
        "Trail Canyon Saddle Mesa Gulch Ranch Frontier Rider Creek Range Bounty Gun Sheriff "
        "Stagecoach Horizon Dust Rails Pass Territory Ridge",
    ),
}
_PLACES = (
    *("Lisbon", "Tokyo", "Marseille", "Havana", "Berlin", "Cairo", "Istanbul", "Budapest"),
    *("Oslo", "Naples", "Vienna", "Montreal", "Kyoto", "Prague", "Seville", "Dublin"),
    *("Tangier", "Valparaiso"),
)
_REGIONS = ("the North", "the Valley", "the Coast", "the Deep", "the East", "the Old Town")
_TIMES = (
    *("Midnight", "Summer", "Winter", "Autumn", "Spring", "Sunday", "Morning", "Twilight"),
    *("Christmas", "Rain"),
)
_NAMES = (
    *("Clara", "Theo", "Nora", "Felix", "Maya", "Oscar", "Ruby", "Leo", "Iris", "Hugo"),
    *("Elsa", "Milo", "Ada", "Jonah", "Lena", "Arlo", "June", "Otto", "Rosa", "Tomas"),
)
_CITY_GENRES = frozenset({"Romance", "Drama", "Comedy", "Mystery", "Crime", "Music", "Thriller"})
_NAME_GENRES = frozenset({"Drama", "Family", "Comedy", "Romance", "Animation", "Music"})
_SUBTITLES = (
    "Reckoning",
    "Origins",
    "The Return",
    "Rising",
    "Redemption",
    "Legacy",
    "Homecoming",
    "Aftermath",
    "Awakening",
    "Revelations",
    "Uprising",
    "Requiem",
    "Dawn",
    "The Last Chapter",
    "Reborn",
    "First Light",
)
_NUMERALS = ("II", "III", "IV", "V", "VI")
_STOP_WORDS = frozenset({"the", "of", "in", "a", "and", *(n.lower() for n in _NUMERALS)})

# --- the users and their sessions -----------------------------------------------------------------
_DEVICES = {"web": 30, "ios": 25, "android": 30, "tv": 15}
_QUALITIES = {"720p": 25, "1080p": 55, "4k": 20}
_HOUR_WEIGHTS = (2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 2, 2, 2, 3, 4, 3, 3, 3, 4, 5, 7, 9, 10, 9, 7, 4)
_CHECKPOINTS = (5.0, 25.0, 50.0, 75.0, 95.0, 100.0)
_COMPLETE = 4  # reaching the 95 % heartbeat counts as finishing the movie
_LISTS = ("favorites", "favorites", "favorites", "favorites", "top-picks")

_DAY_MS = 86_400_000
_HOURS_MINUTES = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_MINUTE_MS = 60_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A user and the taste planted in them."""

    user_id: str
    taste: str  # the TASTES cluster the favourite genres were drawn from
    favourite_genres: dict[str, float]  # genre -> weight; weights sum to 1, heaviest first
    focus: float  # chance a new pick is drawn from the favourite genres (else: popular overall)
    activity: float  # expected watch sessions per 30 days (long-tailed)
    device: str  # preferred device: web | ios | android | tv
    quality: str  # preferred quality: 720p | 1080p | 4k

    @property
    def top_genre(self) -> str:
        return next(iter(self.favourite_genres))


@dataclass(frozen=True, slots=True)
class World:
    """Movies (catalog batch wire format), users, and events (events batch wire format, each with
    its "type", sorted by clientTimestamp)."""

    movies: list[dict[str, Any]]
    events: list[dict[str, Any]]
    users: list[DemoUser]


@dataclass(slots=True)
class _Movie:
    movie_id: str
    title: str
    genres: tuple[str, ...]
    released_ms: int  # epoch ms of the release date's midnight (UTC)
    length_s: int
    appeal: float  # hidden quality: shifts ratings and completion
    words: tuple[str, ...]  # searchable title words, lower case
    wire: dict[str, Any]  # the catalog batch item


def generate_world(
    seed: int = 7,
    *,
    movies: int = 400,
    users: int = 3000,
    days: int = 90,
    end: datetime = DEFAULT_END,
    activity: float = 1.0,
    popularity_skew: float = 1.0,
) -> World:
    """A deterministic demo world: the same arguments always give the same world.

    Every event's clientTimestamp lies in (end - days, end]. ``activity`` scales every user's
    sessions (0.25: a quarter of the density); ``popularity_skew`` is the exponent s of the
    movies' Zipf-like popularity 1 / rank^s (1.3: more concentrated on the head)."""
    if activity <= 0 or popularity_skew <= 0:
        raise ValueError("activity and popularity_skew must be positive")
    if movies < 1 or users < 0 or days < 1:
        raise ValueError("movies and days must be at least 1, users at least 0")
    if end.tzinfo is None or end.utcoffset() is None:
        raise ValueError("end must be an aware datetime")
    end_ms = (end - _EPOCH) // timedelta(milliseconds=1)
    start_ms = end_ms - days * _DAY_MS
    # Millions of small dicts and no reference cycles: the cyclic collector would only rescan them
    # (about a third of the run time at 50,000 users).
    collecting = gc.isenabled()
    gc.disable()
    try:
        catalog = _make_movies(Random(f"demo-world/{seed}/movies"), movies, end.astimezone(UTC))
        people = _make_users(Random(f"demo-world/{seed}/users"), users)
        simulation = _Simulation(
            Random(f"demo-world/{seed}/events"),
            catalog,
            start_ms,
            end_ms,
            activity=activity,
            popularity_skew=popularity_skew,
        )
        events = simulation.run(people, days)
    finally:
        if collecting:
            gc.enable()
    return World(movies=[m.wire for m in catalog], events=events, users=people)


# --- helpers --------------------------------------------------------------------------------------
_UUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET = (0x8000 << 48) | (0x4000 << 64)


def _uuid(rng: Random) -> str:
    """A random (version 4) UUID drawn from `rng`: str(uuid.UUID(int=..., version=4)), faster."""
    digits = f"{rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def _weighted(rng: Random, weights: Mapping[str, float]) -> str:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


# --- movies ---------------------------------------------------------------------------------------
class _Titles:
    """Unique, believable titles: templates over per-genre word lists, then subtitles."""

    def __init__(self, rng: Random) -> None:
        self._rng = rng
        self._taken: set[str] = set()
        self._words = {g: (a.split(), n.split()) for g, (a, n) in _WORDS.items()}

    def new(self, genres: tuple[str, ...]) -> str:
        rng = self._rng
        for _ in range(12):
            title = self._compose(rng.choice(genres))
            if title not in self._taken:
                return self.take(title)
        base = self._compose(genres[0])
        for subtitle in rng.sample(_SUBTITLES, len(_SUBTITLES)):
            title = f"{base}: {subtitle}"
            if title not in self._taken:
                return self.take(title)
        number = 2
        while f"{base} {number}" in self._taken:
            number += 1
        return self.take(f"{base} {number}")

    def take(self, title: str) -> str:
        self._taken.add(title)
        return title

    def sequel(self, title: str) -> str | None:
        """The next free numbered title of a series ("X II", then "X III", ...)."""
        first, _, last = title.rpartition(" ")
        if first and last in _NUMERALS:
            title = first
        for number in _NUMERALS:
            candidate = f"{title} {number}"
            if candidate not in self._taken:
                return self.take(candidate)
        return None

    def _compose(self, genre: str) -> str:
        rng = self._rng
        adjectives, nouns = self._words[genre]
        roll = rng.random()
        if roll < 0.36:
            return f"The {rng.choice(adjectives)} {rng.choice(nouns)}"
        if roll < 0.70:
            return f"{rng.choice(adjectives)} {rng.choice(nouns)}"
        if roll < 0.82:
            place = rng.choice(_PLACES) if rng.random() < 0.7 else rng.choice(_REGIONS)
            return f"{rng.choice(nouns)} of {place}"
        if roll < 0.91 and genre in _CITY_GENRES:
            return f"{rng.choice(_TIMES)} in {rng.choice(_PLACES)}"
        if genre in _NAME_GENRES:
            return f"{rng.choice(_NAMES)}'s {rng.choice(nouns)}"
        first, second = rng.sample(nouns, 2)
        return f"The {first} and the {second}"


def _movie_genres(rng: Random) -> tuple[str, ...]:
    main = _weighted(rng, _GENRE_SHARE)
    roll = rng.random()
    count = 1 if roll < 0.35 else 2 if roll < 0.8 else 3
    genres = [main]
    if count >= 2:
        second = rng.choice(_COMPANIONS[main])
        genres.append(second)
        if count == 3:
            thirds = [g for g in _COMPANIONS[main] if g != second and g in _COMPANIONS[second]]
            if thirds:
                genres.append(rng.choice(thirds))
    return tuple(genres)


def _minimum_age(rng: Random, genres: tuple[str, ...]) -> int:
    age = max(rng.choice(_AGES[g]) for g in genres)
    if "Family" in genres:
        age = min(age, 7)
    elif "Animation" in genres:
        age = min(age, 13)
    if "Horror" in genres:
        age = max(age, 16)
    return age


def _release_date(rng: Random, end: datetime) -> date:
    last = (end - timedelta(milliseconds=1)).date()
    age = int(rng.expovariate(1 / 15))  # skewed recent: half the catalog from the last ~10 years
    year = last.year - age
    if year < 1960:
        year = rng.randint(1960, min(1990, last.year))
    first = date(year, 1, 1)
    span = (min(date(year, 12, 31), last) - first).days
    return first + timedelta(days=rng.randint(0, max(span, 0)))


def _tags(rng: Random, genres: tuple[str, ...], year: int) -> list[str]:
    count = rng.choices((0, 1, 2, 3, 4), weights=(15, 25, 30, 20, 10))[0]
    tags: list[str] = []
    for _ in range(count * 3):
        if len(tags) == count:
            break
        if rng.random() < 0.7:
            tag = rng.choice(_GENRE_TAGS[rng.choice(genres)])
        else:
            tag = rng.choice(_GENERAL_TAGS)
        if tag not in tags:
            tags.append(tag)
    if year < 1968 and len(tags) < 4 and "black and white" not in tags and rng.random() < 0.5:
        tags.append("black and white")
    return tags


def _make_movies(rng: Random, count: int, end: datetime) -> list[_Movie]:
    titles = _Titles(rng)
    countries, country_weights = tuple(_COUNTRIES), tuple(_COUNTRIES.values())
    made: list[_Movie] = []
    release_years: list[int] = []
    for _ in range(count):
        released = _release_date(rng, end)
        title: str | None = None
        genres: tuple[str, ...] = ()
        if made and rng.random() < 0.03:  # a sequel of an older movie, same genres
            origin = rng.randrange(len(made))
            if release_years[origin] + 2 <= released.year:
                title = titles.sequel(made[origin].title)
                genres = made[origin].genres
        if title is None:
            genres = _movie_genres(rng)
            title = titles.new(genres)
        if "Documentary" in genres or "Animation" in genres:
            minutes = round(rng.triangular(80, 125, 90))
        else:
            minutes = round(min(180.0, max(80.0, rng.gauss(112, 20))))
        movie_id = _uuid(rng)
        wire: dict[str, Any] = {
            "movieId": movie_id,
            "title": title,
            "genres": list(genres),
            "releaseYear": released.year,
            "releaseDate": released.isoformat(),
            "durationMinutes": minutes,
            "minimumAge": _minimum_age(rng, genres),
            "country": rng.choices(countries, weights=country_weights)[0],
            "available": True,
            "tags": _tags(rng, genres, released.year),
        }
        searchable = title.lower().replace(":", "").replace("'s ", " ").split()
        made.append(
            _Movie(
                movie_id=movie_id,
                title=title,
                genres=genres,
                released_ms=(released - _EPOCH_DATE).days * _DAY_MS,
                length_s=minutes * 60,
                appeal=rng.gauss(0.0, 0.45),
                words=tuple(w for w in searchable if w not in _STOP_WORDS),
                wire=wire,
            )
        )
        release_years.append(released.year)
    return made


# --- users ----------------------------------------------------------------------------------------
def _make_users(rng: Random, count: int) -> list[DemoUser]:
    tastes, shares = tuple(_TASTE_SHARE), tuple(_TASTE_SHARE.values())
    made = []
    for _ in range(count):
        user_id = _uuid(rng)
        taste = rng.choices(tastes, weights=shares)[0]
        pool = dict(TASTES[taste])
        wanted = rng.choices((1, 2, 3), weights=(30, 45, 25))[0]
        chosen = []
        for _ in range(min(wanted, len(pool))):
            genre = _weighted(rng, pool)
            del pool[genre]
            chosen.append(genre)
        raw = sorted((rng.gammavariate(2.0, 1.0) for _ in chosen), reverse=True)
        total = sum(raw)
        made.append(
            DemoUser(
                user_id=user_id,
                taste=taste,
                favourite_genres={g: round(w / total, 4) for g, w in zip(chosen, raw, strict=True)},
                focus=round(rng.uniform(0.7, 0.9), 3),
                # Pareto: most users watch a couple of movies a month, a few several a day.
                activity=round(min(90.0, 0.8 * rng.paretovariate(1.4)), 3),
                device=_weighted(rng, _DEVICES),
                quality=_weighted(rng, _QUALITIES),
            )
        )
    return made


# --- events ---------------------------------------------------------------------------------------
class _UserState:
    __slots__ = (
        "bias",
        "fav",
        "fav_cum",
        "fav_names",
        "favourites",
        "finished",
        "finished_set",
        "progress",
        "rate_chance",
        "rated_until",
        "ratings",
        "seen",
        "user",
    )

    def __init__(self, user: DemoUser, rng: Random) -> None:
        self.user = user
        self.fav = user.favourite_genres
        self.fav_names = tuple(self.fav)
        self.fav_cum = _cumulative(tuple(self.fav.values()))
        self.rate_chance = rng.uniform(0.15, 0.6)  # how often this user rates a finished movie
        self.bias = rng.gauss(0.0, 0.35)  # a generous or a harsh rater
        self.seen: set[int] = set()  # movies started: new picks avoid them
        self.finished: list[int] = []  # rewatch candidates, in the order finished
        self.finished_set: set[int] = set()
        self.progress: dict[int, int] = {}  # abandoned movie -> last checkpoint reached
        self.ratings: dict[int, float] = {}
        self.rated_until: dict[int, int] = {}  # movie -> time of its latest rating event
        self.favourites: set[int] = set()


class _Simulation:
    def __init__(
        self,
        rng: Random,
        movies: list[_Movie],
        start_ms: int,
        end_ms: int,
        *,
        activity: float = 1.0,
        popularity_skew: float = 1.0,
    ) -> None:
        self.rng = rng
        self.activity = activity
        self.movies = movies
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.events: list[dict[str, Any]] = []
        self._days: dict[int, str] = {}
        # Zipf-like popularity, loosely following appeal: better movies tend to be watched more.
        order = sorted(range(len(movies)), key=lambda i: -(movies[i].appeal + rng.gauss(0, 0.6)))
        popularity = [0.0] * len(movies)
        for rank, index in enumerate(order):
            popularity[index] = 1.0 / (rank + 1) ** popularity_skew
        self.all_cum = _cumulative(popularity)
        self.genre_movies: dict[str, list[int]] = {g: [] for g in GENRES}
        for index, movie in enumerate(movies):
            for genre in movie.genres:
                self.genre_movies[genre].append(index)
        self.genre_cum = {
            g: _cumulative([popularity[i] for i in ids]) for g, ids in self.genre_movies.items()
        }
        self.word_counts: dict[str, int] = {}
        for movie in movies:
            for word in dict.fromkeys(movie.words):
                self.word_counts[word] = self.word_counts.get(word, 0) + 1
        self.hour_cum = _cumulative(_HOUR_WEIGHTS)
        self.device_names = tuple(_DEVICES)
        self.quality_names = tuple(_QUALITIES)

    # --- the run -------------------------------------------------------------------------------
    def run(self, users: list[DemoUser], days: int) -> list[dict[str, Any]]:
        for user in users:
            self._user(user, days)
        self.events.sort(key=itemgetter("clientTimestamp"))  # stable: ties keep their order
        return self.events

    def _user(self, user: DemoUser, days: int) -> None:
        rng = self.rng
        state = _UserState(user, rng)
        window = self.end_ms - self.start_ms
        first, last = self.start_ms, self.end_ms
        if days >= 14 and rng.random() < 0.25:  # joined late or left early
            length = int(window * rng.uniform(0.25, 1.0))
            first = self.start_ms + int(rng.random() * (window - length))
            last = first + length
        share = (last - first) / window
        expected = user.activity * self.activity * days / 30 * share
        sessions = max(1, round(expected * rng.uniform(0.75, 1.25)))
        starts = sorted(self._start_time(first, last) for _ in range(sessions))
        cursor = first
        for start in starts:
            at = start if start > cursor + 5 * _MINUTE_MS else cursor + rng.randint(5, 90) * 60_000
            if at > self.end_ms:
                break
            cursor = self._session(state, at)

    def _start_time(self, first: int, last: int) -> int:
        """A moment in (first, last], mostly in the evening."""
        rng = self.rng
        moment = first + 1 + int(rng.random() * (last - first - 1))
        hour = bisect_right(self.hour_cum, rng.random() * self.hour_cum[-1], 0, 23)
        snapped = moment - moment % _DAY_MS + hour * 3_600_000 + rng.randrange(3_600_000)
        return snapped if first < snapped <= last else moment

    def _session(self, state: _UserState, at: int) -> int:
        """One visit starting at `at`; returns the time of its last event."""
        rng = self.rng
        user = state.user
        session_id = _uuid(rng)
        roll = rng.random()
        if roll < 0.05:
            return self._aimless_search(state, at, session_id)
        first_checkpoint = 0
        rewatch = False
        if state.progress and roll < 0.17:  # continue watching
            movie = rng.choice(list(state.progress))
            first_checkpoint = state.progress.pop(movie) + 1
        elif state.finished and roll < 0.21:
            movie = rng.choice(state.finished)
            rewatch = True
        else:
            picked = self._pick(state, at)
            if picked is None:
                return at
            movie, genre = picked
            if rng.random() < 0.28:
                at = self._search(state, at, session_id, movie, genre) + rng.randint(15, 180) * 1000
        device = user.device if rng.random() < 0.85 else rng.choice(self.device_names)
        quality = user.quality if rng.random() < 0.85 else rng.choice(self.quality_names)
        return self._watch(state, at, session_id, movie, first_checkpoint, rewatch, device, quality)

    def _pick(self, state: _UserState, at: int) -> tuple[int, str | None] | None:
        """A movie not started before (on taste with probability focus), by popularity."""
        rng = self.rng
        random = rng.random
        movies = self.movies
        for _ in range(6):
            genre: str | None = None
            if random() < state.user.focus:
                cum = state.fav_cum
                genre = state.fav_names[bisect_right(cum, random() * cum[-1], 0, len(cum) - 1)]
                pool = self.genre_movies[genre]
                if pool:
                    cum = self.genre_cum[genre]
                    movie = pool[bisect_right(cum, random() * cum[-1], 0, len(cum) - 1)]
                else:  # a small catalog without that genre
                    genre = None
            if genre is None:
                cum = self.all_cum
                movie = bisect_right(cum, random() * cum[-1], 0, len(cum) - 1)
            if movie not in state.seen and movies[movie].released_ms <= at:
                return movie, genre
        return None

    def _watch(
        self,
        state: _UserState,
        at: int,
        session_id: str,
        index: int,
        first_checkpoint: int,
        rewatch: bool,
        device: str,
        quality: str,
    ) -> int:
        rng = self.rng
        random = rng.random
        movie = self.movies[index]
        length_s = movie.length_s
        fav = state.fav
        liking = min(1.0, 1.6 * sum(fav.get(g, 0.0) for g in movie.genres))
        stop = min(0.45, max(0.02, 0.04 + 0.26 * (1.0 - liking) - 0.06 * movie.appeal))
        if rewatch:
            stop /= 2
        full_length = random() < 0.05  # the platform sends the movie's length instead
        pace = (1.0 + 0.15 * random()) * length_s * 10  # ms per percent; pauses make it longer
        previous = _CHECKPOINTS[first_checkpoint - 1] if first_checkpoint else 0.0
        reached = -1
        user_id = state.user.user_id
        movie_id = movie.movie_id
        end_ms = self.end_ms
        append = self.events.append
        iso = self._iso
        for checkpoint in range(first_checkpoint, len(_CHECKPOINTS)):
            base = _CHECKPOINTS[checkpoint]
            moment = at + int((base - previous) * pace + 20_000 * random())
            if moment > end_ms:
                break  # still watching when the window closes
            at = moment
            previous = base
            reached = checkpoint
            progress = base if base == 100.0 else round(base + 3.0 * random() - 1.5, 1)
            watched = length_s if full_length else int(length_s * progress / 100)
            append(
                {
                    "type": "watch",
                    "requestId": _uuid(rng),
                    "userId": user_id,
                    "movieId": movie_id,
                    "clientTimestamp": iso(at),
                    "metadata": {
                        "watchDuration": watched,
                        "device": device,
                        "quality": quality,
                        "sessionId": session_id,
                        "progressPercent": progress,
                    },
                }
            )
            if checkpoint >= _COMPLETE:
                if random() < 0.5:  # closed the player during the credits
                    break
            elif random() < stop:
                break
        if reached < 0:
            return at
        state.seen.add(index)
        completed = reached >= _COMPLETE
        if completed:
            if index not in state.finished_set:
                state.finished_set.add(index)
                state.finished.append(index)
        elif rng.random() < 0.15 + 0.5 * liking:
            state.progress[index] = reached  # to be continued
        rating: float | None = None
        chance = state.rate_chance if completed else state.rate_chance * 0.2 if reached else 0.0
        if rng.random() < chance:
            at, rating = self._rate(state, at, index, liking, completed)
        if index not in state.favourites:
            if rating is not None:
                chance = 0.45 if rating >= 4.5 else 0.25 if rating >= 4.0 else 0.02
            else:
                chance = 0.01 + 0.12 * liking if completed else 0.003
            if rng.random() < chance:
                at = self._favourite(state, at, index)
        return at

    def _rate(
        self, state: _UserState, at: int, index: int, liking: float, completed: bool
    ) -> tuple[int, float | None]:
        """Rate the movie just watched (re-rating after a rewatch sets previousRating); returns
        the time of the rating and its value."""
        rng = self.rng
        movie = self.movies[index]
        rated_at = at + rng.randint(15, 600) * 1000
        # Not past the window, and not before a pending later edit of an earlier rating.
        if rated_at > self.end_ms or rated_at <= state.rated_until.get(index, 0):
            return at, None
        mean = 2.4 + 1.7 * liking + 0.7 * movie.appeal + state.bias - (0.0 if completed else 1.2)
        rating = _half_stars(mean + rng.gauss(0.0, 0.55))
        previous = state.ratings.get(index)
        if previous == rating:
            return at, rating
        self._rating_event(state, rated_at, index, rating, previous)
        final, last = rating, rated_at
        if rng.random() < 0.05:  # edited later
            later = rated_at + int(rng.expovariate(1.0) * 3 * _DAY_MS) + _MINUTE_MS
            edited = _half_stars(rating + rng.choice((-1.0, -0.5, 0.5, 1.0)))
            if later <= self.end_ms and edited != rating:
                self._rating_event(state, later, index, edited, rating)
                final, last = edited, later
        state.ratings[index] = final
        state.rated_until[index] = last
        return rated_at, rating

    def _rating_event(
        self, state: _UserState, at: int, index: int, rating: float, previous: float | None
    ) -> None:
        metadata: dict[str, Any] = {"rating": rating}
        if previous is not None:
            metadata["previousRating"] = previous
        self.events.append(
            {
                "type": "rating",
                "requestId": _uuid(self.rng),
                "userId": state.user.user_id,
                "movieId": self.movies[index].movie_id,
                "clientTimestamp": self._iso(at),
                "metadata": metadata,
            }
        )

    def _favourite(self, state: _UserState, at: int, index: int) -> int:
        rng = self.rng
        moment = at + rng.randint(2, 90) * 1000
        if moment > self.end_ms:
            return at
        list_id = rng.choice(_LISTS)
        state.favourites.add(index)
        self._favourite_event(state, moment, index, "add", list_id)
        if rng.random() < 0.1:  # changed their mind later
            later = moment + int(rng.expovariate(1.0) * 10 * _DAY_MS) + _MINUTE_MS
            if later <= self.end_ms:
                self._favourite_event(state, later, index, "remove", list_id)
        return moment

    def _favourite_event(
        self, state: _UserState, at: int, index: int, action: str, list_id: str
    ) -> None:
        self.events.append(
            {
                "type": "favorite",
                "requestId": _uuid(self.rng),
                "userId": state.user.user_id,
                "movieId": self.movies[index].movie_id,
                "clientTimestamp": self._iso(at),
                "metadata": {"action": action, "listId": list_id},
            }
        )

    def _search(
        self, state: _UserState, at: int, session_id: str, index: int, genre: str | None
    ) -> int:
        """A search that finds movie `index`: its genre's name or words of its title."""
        rng = self.rng
        filters: dict[str, Any] | None = None
        if genre is not None and rng.random() < 0.35:
            query = genre if rng.random() < 0.3 else genre.lower()
            results = len(self.genre_movies[genre])
            if rng.random() < 0.3:
                filters = {"genres": [genre]}
        else:
            query, results = self._title_query(self.movies[index])
            if rng.random() < 0.05:
                filters = {"releaseYearFrom": rng.choice((1980, 1990, 2000, 2010, 2020))}
        self._search_event(state, at, session_id, query, results, filters)
        return at

    def _aimless_search(self, state: _UserState, at: int, session_id: str) -> int:
        """A search that leads to no watch: a genre, a title's words, or a typo."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            genre = rng.choice(GENRES)
            query, results = genre.lower(), len(self.genre_movies[genre])
        else:
            query, results = self._title_query(self.movies[rng.randrange(len(self.movies))])
            if roll > 0.8 and len(query) > 4:
                cut = rng.randrange(1, len(query) - 1)
                query, results = query[:cut] + query[cut + 1 :], 0
        self._search_event(state, at, session_id, query, results, None)
        return at

    def _title_query(self, movie: _Movie) -> tuple[str, int]:
        rng = self.rng
        words = movie.words or (movie.title.lower(),)
        counts = self.word_counts
        roll = rng.random()
        if roll < 0.25 and len(words) > 1:
            start = rng.randrange(len(words) - 1)
            pair = words[start : start + 2]
            query = " ".join(pair)
            results = min(counts.get(w, 1) for w in pair)
        else:
            word = rng.choice(words)
            results = counts.get(word, 1)
            query = word
            if roll > 0.85 and len(word) > 4:  # still typing
                query = word[: rng.randint(3, len(word) - 1)]
                results += rng.randint(0, 4)
        if rng.random() < 0.25:
            query = query.title()
        return query, results

    def _search_event(
        self,
        state: _UserState,
        at: int,
        session_id: str,
        query: str,
        results: int,
        filters: dict[str, Any] | None,
    ) -> None:
        metadata: dict[str, Any] = {"query": query, "resultsCount": results}
        if filters is not None:
            metadata["filters"] = filters
        metadata["sessionId"] = session_id
        self.events.append(
            {
                "type": "search",
                "requestId": _uuid(self.rng),
                "userId": state.user.user_id,
                "movieId": None,
                "clientTimestamp": self._iso(at),
                "metadata": metadata,
            }
        )

    def _iso(self, at: int) -> str:
        """Epoch milliseconds as ISO-8601 with a Z (fixed width: sorts as time does)."""
        minute, millis = divmod(at, _MINUTE_MS)
        day, minute_of_day = divmod(minute, 1440)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (_EPOCH_DATE + timedelta(days=day)).isoformat() + "T"
        return f"{prefix}{_HOURS_MINUTES[minute_of_day]}{millis / 1000:06.3f}Z"


def _half_stars(value: float) -> float:
    return min(5.0, max(0.5, round(value * 2) / 2))


# --- JSON Lines -----------------------------------------------------------------------------------
def iter_world_lines(world: World) -> Iterator[bytes]:
    """The world as JSON Lines: movies, then users, then events, one object per line with its
    "kind" ("movie", "user", "event")."""
    dumps = orjson.dumps
    for movie in world.movies:
        yield dumps({"kind": "movie", **movie}) + b"\n"
    for user in world.users:
        yield dumps({"kind": "user", **_user_wire(user)}) + b"\n"
    for event in world.events:
        yield dumps({"kind": "event", **event}) + b"\n"


def _user_wire(user: DemoUser) -> dict[str, Any]:
    return {
        "userId": user.user_id,
        "taste": user.taste,
        "favouriteGenres": user.favourite_genres,
        "focus": user.focus,
        "activity": user.activity,
        "device": user.device,
        "quality": user.quality,
    }


def write_world(world: World, path: str | Path) -> None:
    with Path(path).open("wb") as out:
        out.writelines(iter_world_lines(world))


def read_world(path: str | Path) -> World:
    movies: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    users: list[DemoUser] = []
    with Path(path).open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item = orjson.loads(line)
            kind = item.pop("kind", None) if isinstance(item, dict) else None
            if kind == "event":
                events.append(item)
            elif kind == "movie":
                movies.append(item)
            elif kind == "user":
                users.append(
                    DemoUser(
                        user_id=item["userId"],
                        taste=item["taste"],
                        favourite_genres=item["favouriteGenres"],
                        focus=item["focus"],
                        activity=item["activity"],
                        device=item["device"],
                        quality=item["quality"],
                    )
                )
            else:
                raise ValueError(f"{path}:{number}: not a movie, user or event line")
    return World(movies=movies, events=events, users=users)
