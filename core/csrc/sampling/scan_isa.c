/* Which ISA's loops the scan runs: CHORD_ISA's at import (the kernels'
 * variable and names, so one setting forces both), else the CPU's best;
 * set_isa switches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logit_scan.h"

/* best first */
static const ScanIsa *const entries[] = {
#if defined(__x86_64__) || defined(_M_X64)
    &scan_avx512,
    &scan_avx2,
#endif
    &scan_portable,
};
static const int n_entries = sizeof entries / sizeof entries[0];
/* every path name any build knows, to tell a typo from a path this CPU lacks */
static const char *const known[] = {"portable", "avx2", "avx512", "neon"};

static const ScanIsa *current;

int scan_supported(const char **names)
{
    int n = 0;
    for (int i = 0; i < n_entries; i++)
        if (entries[i]->supported())
            names[n++] = entries[i]->name;
    return n;
}

static int is_known(const char *name)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i], name) == 0)
            return 1;
    return 0;
}

int scan_select(const char *name, char *why, size_t n)
{
    const char *names[3];
    int count = scan_supported(names);
    for (int i = 0; i < n_entries; i++)
        if (strcmp(entries[i]->name, name) == 0 && entries[i]->supported()) {
            current = entries[i];
            return 0;
        }
    char have[64] = "";
    for (int i = 0; i < count; i++) {
        if (i)
            strncat(have, ", ", sizeof have - strlen(have) - 1);
        strncat(have, names[i], sizeof have - strlen(have) - 1);
    }
    snprintf(why, n, "%s '%.40s' (this CPU runs: %s)",
             is_known(name) ? "this CPU cannot run the scan path" : "unknown scan path", name, have);
    return -1;
}

const ScanIsa *scan_isa(void)
{
    if (!current) {
        const char *names[3];
        scan_supported(names); /* portable always runs */
        char why[8];
        scan_select(names[0], why, sizeof why);
    }
    return current;
}
