<?php

declare(strict_types=1);

// Composer's autoloader when the dependencies are installed; else the PSR-4 map of
// composer.json by hand, so the tests also run with Debian's phpunit and no Composer.
$composer = __DIR__ . '/../vendor/autoload.php';
if (is_file($composer)) {
    require $composer;
    return;
}
spl_autoload_register(static function (string $class): void {
    foreach (['Grconnect\\Tests\\' => __DIR__ . '/', 'Grconnect\\' => __DIR__ . '/../src/'] as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
