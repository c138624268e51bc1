/* Which ISA's attention kernel runs: the CPU's best, CHORD_ISA, or set_isa. */
#ifndef CHORD_ISA_SELECT_H
#define CHORD_ISA_SELECT_H

#include <stddef.h>

#include "flash.h"

typedef struct {
    const char *name;
    flash_unit_fn unit;
    int (*supported)(void);
} IsaEntry;

#define ISA_COUNT 3

const IsaEntry *isa_current(void);
/* The entries this CPU can run, best first; returns how many. */
int isa_supported(const IsaEntry **out);
/* Switch to `name`; on failure returns -1 with a one-line reason in `why`. */
int isa_select(const char *name, char *why, size_t n);
/* At import: CHORD_ISA if set, else the best supported. */
int isa_init_from_env(char *why, size_t n);

#endif
