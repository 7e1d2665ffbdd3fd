/* The cost of the training step's undo copy at W2's size: 3 x 9,610 floats copied by memcpy and by an AVX loop,
   20,000 times, 3 rounds (the figure in bench/RESULTS.md, "why the misses"):

       gcc -O2 bench/copy_bandwidth.c -o /tmp/copy_bandwidth && /tmp/copy_bandwidth
*/
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
__attribute__((target("avx2"))) void cp(float*d,const float*s,size_t n){for(size_t i=0;i<n;i+=8)_mm256_storeu_ps(d+i,_mm256_loadu_ps(s+i));}
int main(){size_t n=9610; float*src=aligned_alloc(64,4*3*n+64),*dst=aligned_alloc(64,4*3*n+64);
for(size_t i=0;i<3*n;i++)src[i]=i;
for(int rep=0;rep<3;rep++){
double t=now(); for(int r=0;r<20000;r++){for(int k=0;k<3;k++) memcpy(dst+k*n,src+k*n,n*4); __asm__ volatile(""::"r"(dst):"memory");} double a=now()-t;
t=now(); for(int r=0;r<20000;r++){for(int k=0;k<3;k++) cp(dst+k*n,src+k*n,n); __asm__ volatile(""::"r"(dst):"memory");} double b=now()-t;
printf("memcpy %.2f us  avx loop %.2f us per 3x%zu floats\n",a/20000*1e6,b/20000*1e6,n);}
}
