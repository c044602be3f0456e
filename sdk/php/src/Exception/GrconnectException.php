<?php

declare(strict_types=1);

namespace Grconnect\Exception;

/** Every exception this SDK throws implements it. */
interface GrconnectException extends \Throwable
{
}
