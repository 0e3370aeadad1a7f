#ifndef CORE_H
#define CORE_H
int core_sum(const int *values, int count);
#endif
