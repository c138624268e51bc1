/* ISA dispatch for the attention kernel (see isa_select.h). */
#include "isa_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int always(void) { return 1; }

#if defined(__x86_64__) || defined(__i386__)
static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

static int has_avx512(void)
{
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#endif

/* best first */
static const IsaEntry entries[] = {
#if defined(__x86_64__) || defined(__i386__)
    {"avx512", flash_unit_avx512, has_avx512},
    {"avx2", flash_unit_avx2, has_avx2},
#endif
    {"portable", flash_unit_portable, always},
};
static const int n_entries = sizeof entries / sizeof entries[0];
/* every name any build knows, for telling a typo from an ISA this CPU lacks */
static const char *known_names = "portable, avx2, avx512, neon";

static const IsaEntry *current = &entries[sizeof entries / sizeof entries[0] - 1];

const IsaEntry *isa_current(void) { return current; }

int isa_supported(const IsaEntry **out)
{
    int n = 0;
    for (int i = 0; i < n_entries; i++)
        if (entries[i].supported())
            out[n++] = &entries[i];
    return n;
}

static void supported_list(char *buf, size_t n)
{
    const IsaEntry *list[ISA_COUNT];
    int count = isa_supported(list);
    buf[0] = 0;
    for (int i = 0; i < count; i++) {
        strncat(buf, list[i]->name, n - strlen(buf) - 1);
        if (i + 1 < count)
            strncat(buf, ", ", n - strlen(buf) - 1);
    }
}

int isa_select(const char *name, char *why, size_t n)
{
    char have[128];
    supported_list(have, sizeof have);
    for (int i = 0; i < n_entries; i++) {
        if (strcmp(entries[i].name, name) != 0)
            continue;
        if (!entries[i].supported()) {
            snprintf(why, n, "ISA '%s' cannot run on this CPU (it supports: %s)", name, have);
            return -1;
        }
        current = &entries[i];
        return 0;
    }
    if (strstr(known_names, name) && name[0])
        snprintf(why, n, "ISA '%s' cannot run on this CPU (it supports: %s)", name, have);
    else
        snprintf(why, n, "unknown ISA '%s' (known: %s; this CPU supports: %s)", name, known_names, have);
    return -1;
}

int isa_init_from_env(char *why, size_t n)
{
    const char *forced = getenv("CHORD_ISA");
    if (forced && forced[0]) {
        char inner[200];
        if (isa_select(forced, inner, sizeof inner) != 0) {
            snprintf(why, n, "CHORD_ISA=%s: %s", forced, inner);
            return -1;
        }
        return 0;
    }
    const IsaEntry *list[ISA_COUNT];
    isa_supported(list); /* "portable" is always there, so at least one */
    current = list[0];
    return 0;
}
