#ifndef FMT_H
#define FMT_H
#include <stddef.h>
int fmt_total(char *out, size_t size, const int *values, int count);
#endif
