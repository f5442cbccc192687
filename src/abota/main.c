#include <stdio.h>
int main(void) { puts("abota"); return 0; }
