"""A generated Wikipedia-like corpus ("Title | abstract", as DSPy's multi-hop tutorial formats its
abstracts), shared by the retrieval tests and the retrieval benchmark. Deterministic per seed."""

from __future__ import annotations

import random

_FIRST = ("Ada", "Boris", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luca",
          "Mara", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tara", "Viktor")
_LAST = ("Almeida", "Brandt", "Castell", "Dunmore", "Eriksen", "Falk", "Gruber", "Halvorsen", "Ivers", "Jansen",
         "Kovac", "Lindqvist", "Moreau", "Novak", "Ostrander", "Petrov", "Quist", "Rasmussen", "Sorensen", "Tamm")
_PLACES = ("Aldermoor", "Brightwater", "Cinderfell", "Duskhaven", "Eastmarch", "Frostvale", "Glenhollow",
           "Harrowgate", "Ironbridge", "Juniper Bay", "Kestrel Point", "Lowmere", "Marrowdale", "Northwick",
           "Oakheart", "Pinecrest", "Queensford", "Ravenholm", "Stonebrook", "Thornbury")
_FIELDS = ("physicist", "novelist", "composer", "painter", "architect", "chemist", "footballer", "poet",
           "mathematician", "film director", "sculptor", "botanist")
_THINGS = ("river", "cathedral", "observatory", "university", "railway station", "lighthouse", "museum",
           "football club", "opera house", "botanical garden")


def generate(n: int, seed: int = 0) -> list[str]:
    """``n`` abstracts: people born in places, places with landmarks, landmarks founded by people."""

    rng = random.Random(seed)
    docs = []
    for i in range(n):
        person = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        place = rng.choice(_PLACES)
        kind = i % 3
        if kind == 0:
            title = f"{person} ({i})"
            text = (f"{person} was a {rng.choice(_FIELDS)} born in {place} in {rng.randint(1700, 1990)}. "
                    f"{person.split()[0]} studied at the {place} {rng.choice(_THINGS)} and later moved to "
                    f"{rng.choice(_PLACES)}, where the works were first shown.")
        elif kind == 1:
            thing = rng.choice(_THINGS)
            title = f"{place} {thing.title()} ({i})"
            text = (f"The {place} {thing} is a {thing} in {place}. It was founded in {rng.randint(1500, 1950)} "
                    f"by {person}, and it is known for its {rng.choice(('towers', 'gardens', 'archives', 'bridges'))}.")
        else:
            title = f"{place} ({i})"
            text = (f"{place} is a town on the {rng.choice(_THINGS)} coast with a population of "
                    f"{rng.randint(1000, 900000)}. Its mayor in {rng.randint(1900, 2020)} was {person}.")
        docs.append(f"{title} | {text}")
    return docs
